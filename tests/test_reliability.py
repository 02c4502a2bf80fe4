"""The fault matrix: every fault, at every position of the graph, on asyncio and trio, in a real
subprocess with real signals. Each cell asserts the exit code, the reverse stop order of what
started, the time against the configured bounds, the log naming service and bound, and the
timeline report.

The diamond of `tests.sample_apps`: a <- b, a <- c, {b, c} <- d. Positions: leaf d, middle b,
root a. `docs/reliability.md` is generated from `MATRIX` (a test keeps it in sync).
"""

from __future__ import annotations

import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests._process import REPO, spawn, wait_for, with_sets
from tests.sample_apps import read_journal
from tests.test_secrets_sweep import secrets_section

pytestmark = pytest.mark.slow

POSITIONS = {"leaf": "d", "middle": "b", "root": "a"}
DEPENDENTS = {"a": {"b", "c", "d"}, "b": {"d"}, "c": {"d"}, "d": set()}
DEPS = {"a": set(), "b": {"a"}, "c": {"a"}, "d": {"a", "b", "c"}}
BOUND = 0.3  # the bound the faulty service gets, seconds
MARGIN = 6.0  # process start and exit on a busy machine (CI runs two suites side by side)


@dataclass(frozen=True)
class Fault:
    name: str
    guarantee: str
    sets: tuple[str, ...]  # --set options; {x} is the faulty service
    trigger: str  # "none": the fault ends the run; "ready": SIGTERM once ready; "starting": SIGTERM while x starts
    exit_code: int
    log: str  # must appear in the log; {x} and {bound} filled in
    signals: tuple[int, ...] = (signal.SIGTERM,)
    second: str = ""  # journal line that triggers the rest of `signals`
    forced: bool = False
    extra: dict[str, str] = field(default_factory=dict)


MATRIX: tuple[Fault, ...] = (
    Fault(
        "start raises",
        "exit 1; what began is stopped in reverse; dependents never start",
        ("behaviour.start_error=['{x}']",),
        "none",
        1,
        "service '{x}' failed to start: RuntimeError: {x} cannot start",
    ),
    Fault(
        "start hangs",
        "exit 1 once the start bound passes; rolled back",
        ("behaviour.start_delay.{x}=60", "services.{x}.start_timeout={bound}"),
        "none",
        1,
        "service '{x}' did not start within {bound} s (services.{x}.start_timeout)",
    ),
    Fault(
        "stop raises",
        "exit 1; every other service still stopped, in reverse",
        ("behaviour.stop_error=['{x}']",),
        "ready",
        1,
        "service '{x}' failed to stop: RuntimeError: {x} cannot stop; shutdown continued",
    ),
    Fault(
        "stop hangs",
        "exit 1 once the stop bound passes; the others stop",
        ("behaviour.stop_delay.{x}=60", "services.{x}.stop_timeout={bound}"),
        "ready",
        1,
        "service '{x}' did not stop within {bound} s (services.{x}.stop_timeout); shutdown continued",
    ),
    Fault(
        "stop ignores cancellation (shielded)",
        "exit 1; its dependencies stop at its bound, not when it finally returns",
        (
            "behaviour.stop_delay.{x}=1.5",
            "behaviour.shielded_stop=['{x}']",
            "services.{x}.stop_timeout={bound}",
        ),
        "ready",
        1,
        "service '{x}' did not stop within {bound} s (services.{x}.stop_timeout); shutdown continued",
    ),
    Fault(
        "stop ignores cancellation (thread)",
        "exit 1; blocking code in a worker thread does not hold back the others",
        (
            "behaviour.stop_delay.{x}=1.5",
            "behaviour.blocking_stop=['{x}']",
            "services.{x}.stop_timeout={bound}",
        ),
        "ready",
        1,
        "service '{x}' did not stop within {bound} s (services.{x}.stop_timeout); shutdown continued",
    ),
    Fault(
        "run() crashes",
        "exit 1; the crash is logged; all stopped in reverse",
        ("behaviour.crash_after.{x}=0.2",),
        "none",
        1,
        "service '{x}' crashed in run(): RuntimeError: {x} crashed",
    ),
    Fault(
        "signal during startup",
        "exit 0; the starts in flight are cancelled and stopped; nothing else starts",
        ("behaviour.start_delay.{x}=60",),
        "starting",
        0,
        "during startup: aborting and rolling back",
    ),
    Fault(
        "second signal during shutdown",
        "exit 130 within 1 s of the second signal; logs flushed",
        ("behaviour.stop_delay.{x}=60", "services.{x}.stop_timeout=60"),
        "ready",
        130,
        "forcing the shutdown",
        signals=(signal.SIGTERM, signal.SIGTERM),
        second="{x} stop",
        forced=True,
    ),
    Fault(
        "signal storm (50 signals)",
        "exit 130 at once; logs flushed; no traceback",
        ("behaviour.stop_delay.{x}=60", "services.{x}.stop_timeout=60"),
        "ready",
        130,
        "forcing the shutdown",
        signals=(signal.SIGTERM,) * 50,
        second="{x} stop",
        forced=True,
    ),
    Fault(
        "SIGHUP",
        "a graceful shutdown, as SIGTERM: exit 0, reverse order",
        (),
        "ready",
        0,
        "received SIGHUP: shutting down gracefully",
        signals=(signal.SIGHUP,),
    ),
    Fault(
        "SIGQUIT",
        "a graceful shutdown, as SIGTERM: exit 0, reverse order",
        (),
        "ready",
        0,
        "received SIGQUIT: shutting down gracefully",
        signals=(signal.SIGQUIT,),
    ),
)


def cells() -> list[pytest.param]:  # type: ignore[valid-type]
    out = []
    for fault in MATRIX:
        for position, x in POSITIONS.items():
            for backend in ("asyncio", "trio"):
                out.append(pytest.param(fault, x, backend, id=f"{fault.name}-{position}-{backend}"))
    return out


@pytest.mark.parametrize(("fault", "x", "backend"), cells())
def test_fault_matrix(tmp_path: Path, fault: Fault, x: str, backend: str) -> None:
    journal, report, log = tmp_path / "journal.txt", tmp_path / "report.json", tmp_path / "app.log"
    sets = [f'behaviour.journal="{journal}"', f"logging.file='{log}'", "logging.stderr=false"]
    sets += [s.format(x=x, bound=BOUND) for s in fault.sets]
    began = time.monotonic()
    args = ("run", "tests.sample_apps:App", "--report", str(report), "--backend", backend)
    proc = spawn(tmp_path, *args, *with_sets(*sets))
    try:
        if fault.trigger == "ready":
            wait_for(journal, "app ready")
        elif fault.trigger == "starting":
            wait_for(journal, f"{x} start")
        signalled = time.monotonic()
        if fault.trigger != "none":
            proc.send_signal(fault.signals[0])
            if fault.second:
                wait_for(journal, fault.second.format(x=x))
            signalled = time.monotonic()
            for sig in fault.signals[1:]:
                proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    elapsed, since_signal = time.monotonic() - began, time.monotonic() - signalled
    text = log.read_text(encoding="utf-8") if log.exists() else ""

    assert proc.returncode == fault.exit_code, text[-3000:] + err[-2000:]
    assert "Traceback" not in err
    assert fault.log.format(x=x, bound=f"{BOUND:g}") in text
    assert "timeline:" in text  # the last record: logs were flushed on this exit path too

    lines = read_journal(journal)
    began_start = [
        line.split()[0] for line in lines if line.endswith(" start") and not line.startswith("app")
    ]
    stop_calls = [
        line.split()[0] for line in lines if line.endswith(" stop") and not line.startswith("app")
    ]
    # stop() is called exactly for the services whose start began (forced exits may cut the list short)
    if not fault.forced:
        assert sorted(stop_calls) == sorted(began_start), lines
    # reverse order: nobody's stop begins before every dependent that began has stopped or been given up on
    order = {name: i for i, name in enumerate(stop_calls)}
    for name in stop_calls:
        for dependent in DEPENDENTS[name] & set(stop_calls):
            assert order[dependent] < order[name], lines
    # services after the faulty one in start order never start when the fault is in startup
    if fault.trigger in ("none", "starting") and fault.name != "run() crashes":
        assert not (DEPENDENTS[x] & set(began_start)), lines

    # bounded in time
    if fault.name == "second signal during shutdown":
        assert since_signal < 1.0 + 1.0, since_signal
    elif fault.name.startswith("stop ignores"):
        assert elapsed < 1.5 + MARGIN
    else:
        assert elapsed < BOUND + MARGIN + 1, elapsed

    # the timeline report tells the same story
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["exit_code"] == fault.exit_code
    outcomes = {
        s["service"]: (s["start"]["outcome"], s["stop"]["outcome"]) for s in data["services"]
    }
    expected_x = {
        "start raises": ("failed", "ok"),
        "start hangs": ("timed out", "ok"),
        "stop raises": ("ok", "failed"),
        "stop hangs": ("ok", "timed out"),
        "stop ignores cancellation (shielded)": ("ok", "timed out"),
        "stop ignores cancellation (thread)": ("ok", "timed out"),
        "run() crashes": ("ok", "ok"),
        "signal during startup": ("cancelled", "ok"),
        "SIGHUP": ("ok", "ok"),
        "SIGQUIT": ("ok", "ok"),
    }.get(fault.name)
    if expected_x is not None:
        assert outcomes[x] == expected_x, outcomes
    if fault.trigger in ("none", "starting") and fault.name != "run() crashes":
        for dependent in DEPENDENTS[x]:
            assert outcomes[dependent] == ("never started", "never started"), outcomes


OUTSIDE_FAULTS = (
    (
        "`stop()` stuck in `time.sleep(30)`, then a second SIGTERM",
        "130",
        "exit within 1 s of the second signal; timeline logged",
    ),
    (
        "`run()` blocks the loop for 20 s, SIGTERM",
        "1",
        "gone by `shutdown_timeout` + 2 s; the watchdog names why",
    ),
    (
        "SIGTERM while a constructor blocks for 3 s",
        "0",
        "acted on when it returns: startup aborted, nothing else starts",
    ),
    (
        "two SIGTERMs while a constructor blocks for 30 s",
        "130",
        "exit within 1 s of the second signal",
    ),
    (
        "`stop()` logs 20,000 lines to a stderr pipe nobody reads",
        "1",
        "gone by `shutdown_timeout` + 2 s; the watchdog never waits on the logger",
    ),
    ("the same stalled pipe, then a second SIGTERM", "130", "exit within 1 s of the second signal"),
    (
        "`logging.file = /dev/full`",
        "1",
        "one line naming the sink, the lost lines counted; the printed exit code is the real one",
    ),
    (
        "PostgreSQL frozen (SIGSTOP) under load, SIGTERM",
        "0/1",
        "the database stop keeps within its own bound (stuck connections dropped without a round"
        " trip); the stop after it gets its time",
    ),
    ("SIGUSR1 after logrotate renamed the file", "0", "a new file, nothing lost, nothing stops"),
    (
        "SIGUSR2",
        "0",
        "each service's state, HTTP requests in flight, DB connections checked out; nothing stops",
    ),
)
"""The faults `tests/test_faults.py` pins, for the page."""


def render_reliability_page() -> str:
    lines = [
        "# Reliability",
        "",
        "Whatever goes wrong, the shutdown is orderly, bounded, and loses nothing. This page lists the",
        "fault matrix that `tests/test_reliability.py` runs: every fault, at the leaf (`d`), the middle",
        "(`b`) and the root (`a`) of the diamond `a <- b, a <- c, {b, c} <- d`, on asyncio and trio,",
        "each in a real subprocess with real signals.",
        "",
        "Every cell asserts: the exit code; that `stop()` ran for exactly the services whose `start()`",
        "began, each after its dependents; the time against the configured bounds; that the log names",
        "the service and the bound; that the log was flushed (its last record is the timeline); and",
        "that the `--report` timeline records the outcome of every service.",
        "",
        f"{len(MATRIX)} faults x {len(POSITIONS)} positions x 2 backends = "
        f"{len(MATRIX) * len(POSITIONS) * 2} cells.",
        "",
        "| fault | exit | guarantee | the log says |",
        "|---|---|---|---|",
    ]
    for fault in MATRIX:
        said = fault.log.format(x="<x>", bound=f"{BOUND:g}")
        lines.append(f"| {fault.name} | {fault.exit_code} | {fault.guarantee} | `{said}` |")
    lines += [
        "",
        "## Faults from outside: a blocked loop, a stalled pipe, a full disk",
        "",
        "Each in a real subprocess with real signals and pipes (`tests/test_faults.py`), on asyncio",
        "and trio; each also asserts that nothing is printed after the final `exit code N` line.",
        "",
        "| fault | exit | guarantee |",
        "|---|---|---|",
        *(f"| {fault} | {code} | {guarantee} |" for fault, code, guarantee in OUTSIDE_FAULTS),
        "",
        "## Nothing lost, on the real built-in services",
        "",
        "| promise | test |",
        "|---|---|",
        "| no accepted HTTP request fails during a graceful shutdown (64 clients, SIGTERM) | `tests/test_http.py` |",
        "| no PostgreSQL connection survives exit (`pg_stat_activity`) | `tests/test_database.py` |",
        "| a half-done transaction is committed by its owner's stop or rolled back, never left half-done | `tests/test_database.py` |",
        "| no log line lost: 50,000 at graceful exit, 30,000 at forced exit, on failed startup | `tests/test_logging.py` |",
        "",
        "## Bad input",
        "",
        "Fuzzed configuration files (TOML and YAML), environment values, `--set` strings and",
        "`module:App` targets always end in a clear message and exit 78, never a traceback, and never",
        "a started service (`tests/test_config.py`, `tests/test_security.py`).",
        "",
        *secrets_section(),
    ]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("check", ["page"])
def test_reliability_page_is_generated_from_the_matrix(check: str) -> None:
    """docs/reliability.md is this matrix; regenerate with `python -m tests.test_reliability`."""
    assert (REPO / "docs" / "reliability.md").read_text(
        encoding="utf-8"
    ) == render_reliability_page()


if __name__ == "__main__":
    (REPO / "docs" / "reliability.md").write_text(render_reliability_page(), encoding="utf-8")
