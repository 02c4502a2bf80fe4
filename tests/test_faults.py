"""Faults from outside the fault matrix, each in a real subprocess with real signals and pipes: a
loop blocked in synchronous code, a stderr pipe nobody reads, a log file on a full disk, log
rotation (SIGUSR1) and the status snapshot (SIGUSR2). Each asserts the exit code, the time bound,
the log content, and that nothing follows the final ``exit code N`` line.

The apps are `tests.fault_apps` (a <- b, each able to block the loop) and `tests.sample_apps`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests._process import free_port, spawn, wait_for, with_sets
from tests.postgres import PostgresServer

pytestmark = pytest.mark.slow

BACKENDS = ["asyncio", "trio"]
FAULTS = "tests.fault_apps:FaultApp"


def launch(
    tmp_path: Path,
    *sets: str,
    backend: str = "asyncio",
    target: str = FAULTS,
    file: str | None = "app.log",
) -> subprocess.Popen[str]:
    journal = tmp_path / "journal.txt"
    options = [f'behaviour.journal="{journal}"', *sets]
    if file is not None:
        options.append(f"logging.file='{tmp_path / file}'")
    return spawn(tmp_path, "run", target, "--backend", backend, *with_sets(*options))


def journal(tmp_path: Path, line: str, timeout: float = 20.0) -> None:
    wait_for(tmp_path / "journal.txt", line, timeout)


def ended(proc: subprocess.Popen[str], timeout: float) -> tuple[int, str, float]:
    """Wait for the exit without reading the pipes first (they may be stalled on purpose);
    returns (exit code, stderr, seconds waited). Kills and fails past ``timeout``."""
    began = time.monotonic()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError(f"still running {timeout} s later") from None
    waited = time.monotonic() - began
    _, err = proc.communicate()
    return proc.returncode, err, waited


def assert_ends_with_exit(text: str, code: int) -> None:
    """The last line printed is ``exit code N``, with N the process's exit code."""
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines, "nothing was printed"
    # the text format adds the record's fields: `exit code 1 | exit_code=1`
    assert lines[-1].split(" | ")[0].strip() == f"exit code {code}", lines[-5:]
    assert "Traceback" not in text


def log_of(tmp_path: Path, name: str = "app.log") -> str:
    path = tmp_path / name
    return path.read_text(encoding="utf-8") if path.exists() else ""


# -- 1. the loop is blocked ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_second_signal_while_a_stop_blocks_the_loop_exits_130_at_once(
    tmp_path: Path, backend: str
) -> None:
    """A stop() stuck in time.sleep(30): the second SIGTERM still forces exit 130 within ~1 s,
    with the timeline logged and the final line last."""
    proc = launch(
        tmp_path, "behaviour.sync_stop.b=30", "services.b.stop_timeout=60", backend=backend
    )
    journal(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    journal(tmp_path, "b blocking")
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 10)
    assert code == 130, err
    assert waited < 1.5, waited
    text = log_of(tmp_path)
    assert "exiting now (second SIGTERM)" in text and "timeline:" in text
    assert_ends_with_exit(text, 130)
    assert_ends_with_exit(err, 130)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_run_body_blocking_the_loop_never_outlives_the_shutdown_bound(
    tmp_path: Path, backend: str
) -> None:
    """run() blocks the loop for 20 s: the first SIGTERM arms the watchdog at once, and the
    process is gone by shutdown_timeout + 2 s (exit 1, the reason logged)."""
    proc = launch(
        tmp_path, "behaviour.sync_run.b=20", "lifecycle.shutdown_timeout=1", backend=backend
    )
    journal(tmp_path, "b blocking")
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 15)
    assert code == 1, err
    assert waited < 1 + 2 + 0.3, waited  # the bound, and a little for the kernel to reap us
    text = log_of(tmp_path)
    assert "the shutdown outlived lifecycle.shutdown_timeout" in text
    assert_ends_with_exit(text, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_signal_while_a_constructor_blocks_aborts_the_startup(tmp_path: Path, backend: str) -> None:
    """SIGTERM while a provider's constructor sleeps 3 s: acted on as soon as it returns, the
    startup is aborted, b never starts, exit 0."""
    proc = launch(tmp_path, "behaviour.sync_init.a=3", backend=backend)
    journal(tmp_path, "a init")
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 15)
    assert code == 0, err
    assert waited < 3 + 2, waited
    text = log_of(tmp_path)
    assert "received SIGTERM" in text
    assert "b start" not in (tmp_path / "journal.txt").read_text()
    assert_ends_with_exit(text, 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_two_signals_while_a_constructor_blocks_force_130_at_once(
    tmp_path: Path, backend: str
) -> None:
    """Two SIGTERMs while a constructor sleeps 30 s: exit 130 within ~1 s of the second."""
    proc = launch(tmp_path, "behaviour.sync_init.a=30", backend=backend)
    journal(tmp_path, "a init")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 10)
    assert code == 130, err
    assert waited < 1.5, waited
    assert_ends_with_exit(log_of(tmp_path), 130)


# -- 2. a stalled stderr pipe --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_stalled_stderr_pipe_never_holds_the_process_past_its_bound(
    tmp_path: Path, backend: str
) -> None:
    """stop() logs 20,000 lines to a stderr pipe nobody reads: the main thread blocks in the
    write, and the process still ends by shutdown_timeout + 2 s (exit 1)."""
    proc = launch(
        tmp_path, "behaviour.log_on_stop.b=20000", "lifecycle.shutdown_timeout=3", backend=backend
    )
    journal(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 20)
    assert code == 1, err[-2000:]
    assert waited < 3 + 2 + 0.3, waited
    assert "Traceback" not in err


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_signal_with_stderr_stalled_forces_130_at_once(
    tmp_path: Path, backend: str
) -> None:
    """The same stalled pipe: a second SIGTERM still forces exit 130 within ~1 s."""
    proc = launch(
        tmp_path, "behaviour.log_on_stop.b=20000", "lifecycle.shutdown_timeout=30", backend=backend
    )
    journal(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    journal(tmp_path, "b stop")
    time.sleep(0.5)  # the pipe is full by now
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 10)
    assert code == 130, err[-2000:]
    assert waited < 1.5, waited


# -- 3. a log sink that fails --------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_full_disk_is_reported_once_and_the_exit_code_printed_is_the_real_one(
    tmp_path: Path, backend: str
) -> None:
    """logging.file=/dev/full: one line naming the sink and the error, the lost lines counted
    before the final line, exit 1 both printed and returned; no "Logging error", no traceback."""
    proc = launch(tmp_path, "logging.file='/dev/full'", backend=backend, file=None)
    journal(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    code, err, _ = ended(proc, 15)
    assert code == 1, err
    assert err.count("log sink /dev/full failed: OSError") == 1, err
    assert "Logging error" not in err
    assert "log sink /dev/full lost" in err
    assert_ends_with_exit(err, 1)


# -- 5. SIGUSR1 and SIGUSR2 ----------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigusr1_reopens_the_log_file_for_logrotate(tmp_path: Path, backend: str) -> None:
    """Rename the file, send SIGUSR1: new lines go to a new file of the same name, nothing lost,
    the app keeps running until SIGTERM (exit 0)."""
    proc = launch(tmp_path, "logging.stderr=false", backend=backend)
    journal(tmp_path, "app ready")
    (tmp_path / "app.log").rename(tmp_path / "app.log.1")
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "reopened" not in log_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None  # still running
    proc.send_signal(signal.SIGTERM)
    code, err, _ = ended(proc, 15)
    assert code == 0, err
    old, new = log_of(tmp_path, "app.log.1"), log_of(tmp_path)
    assert "starting" in old and "received SIGTERM" not in old
    assert f"reopened {tmp_path / 'app.log'}" in new and "received SIGTERM" in new
    assert_ends_with_exit(new, 0)


def test_a_reopen_that_fails_says_so_and_the_final_lines_tell_where_lines_went(
    tmp_path: Path,
) -> None:
    """logrotate renamed the file and a directory now stands at its path: SIGUSR1 says it could
    not reopen (not "reopened"), the app keeps running on the old file, and before the final line
    one warning says the lines since went to the file opened before (not "lost 0 line(s)")."""
    proc = launch(tmp_path)
    journal(tmp_path, "app ready")
    (tmp_path / "app.log").rename(tmp_path / "app.log.1")
    (tmp_path / "app.log").mkdir()
    proc.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while "SIGUSR1" not in log_of(tmp_path, "app.log.1") and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, err, _ = ended(proc, 15)
    old = log_of(tmp_path, "app.log.1")
    assert f"could not reopen {tmp_path / 'app.log'} (IsADirectoryError" in old, old
    assert "SIGUSR1: reopened" not in old and "lost 0 line" not in err
    assert f"log file {tmp_path / 'app.log'} could not be reopened at the last SIGUSR1" in err
    assert code == 1, err
    assert_ends_with_exit(err, 1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigusr2_logs_each_service_state_and_keeps_running(tmp_path: Path, backend: str) -> None:
    """SIGUSR2 logs one status line per service; the app keeps running until SIGTERM."""
    proc = launch(tmp_path, backend=backend)
    journal(tmp_path, "app ready")
    proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while "status: service 'b'" not in log_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, err, _ = ended(proc, 15)
    assert code == 0, err
    text = log_of(tmp_path)
    assert "status: service 'a' started" in text and "status: service 'b' started" in text
    assert_ends_with_exit(err, 0)


def test_sigusr2_reports_requests_in_flight_and_connections_checked_out(tmp_path: Path) -> None:
    """On the built-in services the snapshot has the HTTP requests in flight and the database
    connections checked out, read through their duck-typed properties."""
    sets = (f"http.port={free_port()}", f"database.url='sqlite+aiosqlite:///{tmp_path}/db.sqlite'")
    proc = launch(tmp_path, *sets, target="tests.sample_apps:WebApp")
    journal(tmp_path, "app ready", timeout=30)
    proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while "status: service 'http'" not in log_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    code, err, _ = ended(proc, 30)
    assert code == 0, err
    text = log_of(tmp_path)
    assert "status: service 'http' started, in flight 0" in text
    assert "status: service 'db' started, checked out 0" in text
    assert_ends_with_exit(text, 0)


# -- 4. a frozen database server -----------------------------------------------------------------


def _server_processes(server: PostgresServer) -> list[int]:
    """The postmaster and its children (the backends), read from /proc."""
    main = int((server.data / "postmaster.pid").read_text().split()[0])
    found = [main]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == main:
                found.append(int(entry.name))
    return found


def test_a_frozen_database_server_under_load_does_not_starve_the_stops_after_it(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """PostgreSQL frozen (SIGSTOP) while 4 connections run queries: the database's stop keeps
    within its own bound (stuck connections are dropped without waiting on the server), and the
    service stopped after it still gets its time; the exit code says whether a stop timed out."""
    sets = (
        f"database.url='{postgres.url}'",
        "lifecycle.shutdown_timeout=8",
        "services.load.stop_timeout=1",
        "services.db.stop_timeout=2",
        "behaviour.stop_delay.a=0.5",
    )
    proc = launch(tmp_path, *sets, target="tests.fault_apps:LoadApp")
    frozen: list[int] = []
    try:
        journal(tmp_path, "load running", timeout=30)
        time.sleep(0.5)
        frozen = _server_processes(postgres)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        proc.send_signal(signal.SIGTERM)
        code, err, waited = ended(proc, 20)
    finally:
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
    text = log_of(tmp_path)
    # whether the cancelled queries get stuck on the frozen server is a race: both ends are fine,
    # as long as every stop keeps within its bound and the exit code says whether one timed out
    assert code == (1 if "did not stop within" in text else 0), err
    assert waited < 1 + 2 + 0.5 + 2, waited  # load's bound, the database's, a's stop, exit
    db_row = next(line for line in text.splitlines() if line.strip().startswith("db "))
    assert float(db_row.split()[-2]) < 2 + 0.3, db_row  # its own bound, not the budget
    assert "service 'a' stopped in" in text  # not starved: it got its time after the database
    assert_ends_with_exit(text, code)


def test_nothing_follows_the_final_line_after_a_forced_exit_of_the_built_in_services(
    tmp_path: Path,
) -> None:
    """HTTP + SQLite + a worker whose stop hangs, then a second SIGTERM: exit 130 and the last
    thing on stderr is `exit code 130` (no warning or traceback from the teardown after it)."""
    sets = (
        f"http.port={free_port()}",
        f"database.url='sqlite+aiosqlite:///{tmp_path}/db.sqlite'",
        "behaviour.stop_delay.worker=60",
        "services.worker.stop_timeout=60",
    )
    proc = launch(tmp_path, *sets, target="tests.sample_apps:WebApp")
    journal(tmp_path, "app ready", timeout=30)
    proc.send_signal(signal.SIGTERM)
    journal(tmp_path, "worker stop")
    proc.send_signal(signal.SIGTERM)
    code, err, waited = ended(proc, 15)
    assert code == 130, err
    assert waited < 1.5, waited
    assert_ends_with_exit(err, 130)
    assert_ends_with_exit(log_of(tmp_path), 130)
