"""Logging: set up first, flushed last on every exit path; nothing lost; structured; redacted."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
from pathlib import Path

import pytest
from loguru import logger

from framework.services._logging import LoggingSettings, setup_logging
from tests import _process
from tests._process import with_sets


def spawn(tmp_path: Path, *sets: str) -> subprocess.Popen[str]:
    journal = tmp_path / "journal.txt"
    sets = (f'behaviour.journal="{journal}"', "logging.stderr=false", *sets)
    return _process.spawn(tmp_path, "run", "tests.sample_apps:App", *with_sets(*sets))


def wait_for(tmp_path: Path, line: str, timeout: float = 30.0) -> None:
    _process.wait_for(tmp_path / "journal.txt", line, timeout)


def shutdown_lines(path: Path) -> int:
    with path.open(encoding="utf-8") as f:
        return sum(1 for line in f if "shutdown line" in line)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_50k_lines_logged_during_shutdown_all_reach_the_file(tmp_path: Path, fmt: str) -> None:
    proc = spawn(
        tmp_path,
        "behaviour.log_on_stop.b=50000",
        "logging.file='app.log'",
        f"logging.format='{fmt}'",
    )
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    log = tmp_path / "app.log"
    assert shutdown_lines(log) == 50_000
    if fmt == "json":
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
        stopped = [r for r in records if r.get("event") == "ServiceStopped"]
        assert {r["service"] for r in stopped} == {"a", "b", "c", "d"}
        assert all(r["outcome"] == "ok" and r["phase"] == "stop" for r in stopped)
        assert records[-1]["message"].startswith("timeline:")


@pytest.mark.slow
@pytest.mark.parametrize("enqueue", [False, True])
@pytest.mark.parametrize("stuck", ["cancellable", "thread"])
def test_30k_lines_survive_a_forced_exit(tmp_path: Path, enqueue: bool, stuck: str) -> None:
    """Second SIGTERM while b's stop hangs (cancellable, or blocked in a thread past the watchdog)."""
    sets = [
        "behaviour.log_on_stop.b=30000",
        "behaviour.stop_delay.b=60",
        "services.b.stop_timeout=60",
    ]
    sets += ["logging.file='app.log'", f"logging.enqueue={'true' if enqueue else 'false'}"]
    if stuck == "thread":
        sets.append("behaviour.blocking_stop=['b']")
    proc = spawn(tmp_path, *sets)
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    wait_for(tmp_path, "b logged", timeout=60)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert shutdown_lines(tmp_path / "app.log") == 30_000
    assert "timeline:" in (tmp_path / "app.log").read_text(encoding="utf-8")


@pytest.mark.slow
def test_failed_startup_flushes_the_log(tmp_path: Path) -> None:
    proc = spawn(
        tmp_path,
        "behaviour.start_error=['c']",
        "behaviour.log_on_stop.a=1000",
        "logging.file='app.log'",
        "logging.enqueue=true",
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    text = (tmp_path / "app.log").read_text(encoding="utf-8")
    assert "service 'c' failed to start" in text
    assert shutdown_lines(tmp_path / "app.log") == 1000
    assert "exit code 1" in text


def test_stdlib_logging_is_routed_and_secrets_are_masked(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    sink = setup_logging(
        LoggingSettings(file=path, stderr=False, format="json"), secrets={"s3cr3t-value"}
    )
    try:
        logging.getLogger("uvicorn.error").warning("from the stdlib with s3cr3t-value inside")
        logger.bind(service="db").info("connecting with s3cr3t-value")
    finally:
        sink.flush_sync()
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert records[0]["logger"] == "uvicorn.error"
    assert records[0]["level"] == "WARNING"
    assert records[1]["service"] == "db"
    assert "s3cr3t-value" not in path.read_text(encoding="utf-8")
    assert logging.getLogger().handlers == [] or not any(
        type(h).__name__ == "_InterceptHandler" for h in logging.getLogger().handlers
    )  # the root logger is put back


def test_text_format_escapes_braces(tmp_path: Path) -> None:
    path = tmp_path / "out.log"
    sink = setup_logging(LoggingSettings(file=path, stderr=False), secrets=())
    try:
        logger.bind(payload="{not a field}").info("a {literal} brace")
    finally:
        sink.flush_sync()
    text = path.read_text(encoding="utf-8")
    assert "a {literal} brace" in text
    assert "payload={not a field}" in text


@pytest.mark.parametrize("level", ["DEBUG", "INFO", "WARNING", "ERROR"])
def test_routed_stdlib_loggers_carry_the_level_so_filtered_records_are_never_built(
    level: str,
) -> None:
    """uvicorn's and SQLAlchemy's loggers get the level themselves (SQLAlchemy never below
    WARNING, its statements stay quiet), uvicorn.access has no handlers when its INFO records would
    be dropped (uvicorn then builds none), and flushing gives every logger back its neutral state."""
    number = logging.getLevelName(level)
    sink = setup_logging(LoggingSettings(level=level, stderr=False))
    try:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.asgi"):
            assert logging.getLogger(name).level == number
        access = logging.getLogger("uvicorn.access")
        assert access.hasHandlers() is (number <= logging.INFO)
        assert access.isEnabledFor(logging.INFO) is (number <= logging.INFO)
        assert logging.getLogger("sqlalchemy").level == max(number, logging.WARNING)
        assert not logging.getLogger("sqlalchemy.engine").isEnabledFor(logging.INFO)
    finally:
        sink.flush_sync()
    assert logging.getLogger("uvicorn.access").propagate
    assert logging.getLogger("uvicorn.error").level == logging.NOTSET


def test_per_service_events_below_every_sink_level_build_no_record() -> None:
    """Starting/started/stopping/stopped events reach a sink at their level (DEBUG, INFO) and
    are skipped, record and all, when every sink's level is above theirs."""
    from framework._engine.events import ServiceStarted, ServiceStarting
    from framework._runtime.messages import log_event

    seen: list[str] = []
    sink = setup_logging(LoggingSettings(level="WARNING", stderr=False))
    ids = [logger.add(lambda m: seen.append(m.record["message"]), level="INFO")]
    try:
        log_event(ServiceStarting("db"))
        log_event(ServiceStarted("db", 0.5))
        assert seen == ["service 'db' started in 0.500 s"]
        logger.remove(ids.pop())
        ids.append(logger.add(lambda m: seen.append(m.record["message"]), level="DEBUG"))
        log_event(ServiceStarting("db"))
        assert seen[-1] == "starting service 'db'"
        logger.remove(ids.pop())
        before = len(seen)
        log_event(ServiceStarting("db"))
        log_event(ServiceStarted("db", 0.5))
        assert len(seen) == before
    finally:
        for i in ids:
            logger.remove(i)
        sink.flush_sync()


def test_a_failing_sink_is_reported_once_and_counts_its_lost_lines() -> None:
    """A sink whose writes fail never raises into the caller: one report, then a count."""
    import io

    from framework._runtime.logs import GuardedSink

    class Full(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    sink = GuardedSink("disk.log", Full, report=False)
    for _ in range(3):
        sink.write("a line\n")
    assert sink.lost == 3 and isinstance(sink.error, OSError)


def test_reopen_swaps_in_a_new_sink_and_closes_the_old_one() -> None:
    """SIGUSR1's reopen: lines after it go to the new sink; the old one is stopped."""
    from framework._runtime.logs import GuardedSink

    class Sink:
        def __init__(self) -> None:
            self.lines: list[str] = []
            self.stopped = False

        def write(self, text: str) -> None:
            self.lines.append(text)

        def stop(self) -> None:
            self.stopped = True

    made: list[Sink] = []

    def opener() -> Sink:
        made.append(Sink())
        return made[-1]

    sink = GuardedSink("app.log", opener)
    sink.write("before\n")
    sink.reopen()
    sink.write("after\n")
    assert made[0].lines == ["before\n"] and made[0].stopped
    assert made[1].lines == ["after\n"] and not made[1].stopped
