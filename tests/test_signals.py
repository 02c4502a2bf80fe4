"""Signals: real signals sent to real subprocesses, one test per behaviour of the runner; and the
watcher (`framework._runtime.signals`) with an injected ``notify``, no real signal needed."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from framework._runtime.signals import SIGNALS, USER_SIGNALS, LoopHandle, SignalWatcher
from tests import _process
from tests._process import finish, run_cli, with_sets
from tests.sample_apps import read_journal

SLOW = pytest.mark.slow  # the real-signal tests run a subprocess each


def spawn(
    tmp_path: Path, *sets: str, target: str = "tests.sample_apps:App", args: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    journal = tmp_path / "journal.txt"
    return _process.spawn(
        tmp_path, "run", target, *args, *with_sets(f'behaviour.journal="{journal}"', *sets)
    )


def wait_for(tmp_path: Path, line: str, timeout: float = 15.0) -> None:
    _process.wait_for(tmp_path / "journal.txt", line, timeout)


def events(tmp_path: Path, what: str) -> list[str]:
    lines = read_journal(tmp_path / "journal.txt")
    return [
        line.split()[0]
        for line in lines
        if line.endswith(f" {what}") and not line.startswith("app ")
    ]


BACKENDS = [pytest.param((), id="asyncio"), pytest.param(("--backend", "trio"), id="trio")]


@SLOW
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_stops_everything_in_reverse_and_exits_0(
    tmp_path: Path, backend: tuple[str, ...]
) -> None:
    proc = spawn(tmp_path, args=backend)
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    stopped = events(tmp_path, "stopped")
    assert stopped[0] == "d" and stopped[-1] == "a" and sorted(stopped) == ["a", "b", "c", "d"]
    assert "received SIGTERM" in err and "timeline:" in err and "Traceback" not in err


@SLOW
@pytest.mark.parametrize("how", ["asyncio", "wakeup_fd"])
def test_sigterm_stops_the_app_after_a_library_took_the_signals(tmp_path: Path, how: str) -> None:
    """A library that takes SIGTERM or the wakeup fd in a service's start() does not make the
    application deaf: the signals are taken back (said once in the log), SIGTERM stops the app
    gracefully, and the library's own asyncio handler still runs."""
    proc = spawn(tmp_path, f'behaviour.take_signals={{"b" = "{how}"}}')
    wait_for(tmp_path, "app ready")
    time.sleep(1.5)  # the signals are checked every 0.5 s
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "another library took over" in err and "Traceback" not in err
    assert "received SIGTERM" in err and "app stopped" in read_journal(tmp_path / "journal.txt")
    if how == "asyncio":
        assert "b own SIGTERM handler ran" in read_journal(tmp_path / "journal.txt")


def test_a_signal_the_loop_refuses_is_reported_not_lost() -> None:
    """When the event loop refuses the hand-off (closed, finished), ``hand_off_failed`` is told,
    so the application can log it and exit instead of waiting for a shutdown that never comes."""

    def closed(*args: object) -> None:
        raise RuntimeError("Event loop is closed")

    failed: list[tuple[signal.Signals, str]] = []
    watcher = SignalWatcher(
        lambda s, n: None,
        on_loop=(LoopHandle(closed, threading.get_ident()), lambda s, n: None),
        hand_off_failed=lambda s, e: failed.append((s, str(e))),
    )
    watcher.deliver(int(signal.SIGTERM))
    assert failed == [(signal.SIGTERM, "Event loop is closed")]


@SLOW
def test_sigint_is_graceful_too(tmp_path: Path) -> None:
    proc = spawn(tmp_path)
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGINT)
    code, err = finish(proc)
    assert code == 0, err
    assert "KeyboardInterrupt" not in err


@SLOW
@pytest.mark.parametrize("backend", BACKENDS)
def test_second_signal_while_a_stop_hangs_exits_130_within_a_second(
    tmp_path: Path, backend: tuple[str, ...]
) -> None:
    proc = spawn(tmp_path, "behaviour.stop_delay.b=60", "services.b.stop_timeout=60", args=backend)
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    wait_for(tmp_path, "b stop")
    second = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    elapsed = time.monotonic() - second
    assert code == 130, err
    assert elapsed < 1.0 + 0.5, (
        elapsed
    )  # the promise is 1 s; the rest is process exit on a busy machine
    assert "forcing the shutdown" in err
    assert "timeline:" in err  # logs were flushed after the forced exit


@SLOW
def test_second_signal_while_a_stop_blocks_in_a_thread_still_exits_130(tmp_path: Path) -> None:
    """A stop stuck in a worker thread cannot be cancelled: it is left behind, the logs are flushed,
    and the process ends shortly after."""
    proc = spawn(
        tmp_path,
        "behaviour.stop_delay.b=60",
        "behaviour.blocking_stop=['b']",
        "services.b.stop_timeout=60",
    )
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    wait_for(tmp_path, "b stop")
    second = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 130, err
    assert time.monotonic() - second < 1.5
    assert "timeline:" in err  # the logs were flushed before the process ended


@SLOW
@pytest.mark.parametrize("backend", BACKENDS)
def test_crash_in_run_exits_1_and_stops_dependents_first(
    tmp_path: Path, backend: tuple[str, ...]
) -> None:
    proc = spawn(tmp_path, "behaviour.crash_after.b=0.1", args=backend)
    code, err = finish(proc)
    assert code == 1, err
    stopped = events(tmp_path, "stopped")
    assert stopped.index("d") < stopped.index("b") < stopped.index("a")
    assert "service 'b' crashed in run(): RuntimeError: b crashed" in err


@SLOW
@pytest.mark.parametrize("backend", BACKENDS)
def test_signal_during_startup_rolls_back_and_exits_0(
    tmp_path: Path, backend: tuple[str, ...]
) -> None:
    proc = spawn(tmp_path, "behaviour.start_delay.b=30", args=backend)
    wait_for(tmp_path, "b start")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "d" not in events(tmp_path, "start")
    assert events(tmp_path, "stopped") in (["c", "b", "a"], ["b", "c", "a"])


@SLOW
def test_failed_start_exits_1_and_rolls_back(tmp_path: Path) -> None:
    proc = spawn(tmp_path, "behaviour.start_error=['c']", "behaviour.start_delay.b=0.2")
    code, err = finish(proc)
    assert code == 1, err
    assert "service 'c' failed to start: RuntimeError: c cannot start" in err
    assert "d" not in events(tmp_path, "start")
    assert events(tmp_path, "stopped")[-1] == "a"


@SLOW
def test_stop_timeout_exits_1_naming_service_and_bound(tmp_path: Path) -> None:
    proc = spawn(tmp_path, "behaviour.stop_delay.c=30", "services.c.stop_timeout=0.2")
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 1, err
    assert (
        "service 'c' did not stop within 0.2 s (services.c.stop_timeout); shutdown continued" in err
    )
    assert events(tmp_path, "stopped")[-1] == "a"


@SLOW
def test_report_is_written(tmp_path: Path) -> None:
    import json

    proc = spawn(tmp_path, "behaviour.stop_error=['b']", args=("--report", "report.json"))
    wait_for(tmp_path, "app ready")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 1, err
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["exit_code"] == 1 and report["reason"] == "SIGTERM"
    outcomes = {
        s["service"]: (s["start"]["outcome"], s["stop"]["outcome"]) for s in report["services"]
    }
    assert outcomes == {
        "a": ("ok", "ok"),
        "b": ("ok", "failed"),
        "c": ("ok", "ok"),
        "d": ("ok", "ok"),
    }


@SLOW
def test_check_on_a_cycle_names_it_and_exits_78(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check", "tests.sample_apps:CyclicApp")
    assert result.returncode == 78
    assert "dependency cycle between services: x -> z -> y -> x" in result.stderr
    assert "Traceback" not in result.stderr


@SLOW
def test_check_prints_layers(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "check", "tests.sample_apps:App")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0: a", "1: b c", "2: d"]


@SLOW
@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("nowhere:App", "no module named 'nowhere'"),
        ("tests.sample_apps:Missing", "has no attribute 'Missing'"),
        ("tests.sample_apps:NotAnApp", "not a framework.Application subclass"),
        ("tests.sample_apps", "expected module:attr"),
    ],
)
def test_bad_targets_are_one_line_and_exit_78(tmp_path: Path, target: str, message: str) -> None:
    for command in ("run", "check"):
        result = run_cli(tmp_path, command, target)
        assert result.returncode == 78
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_watcher_counts_shutdown_signals_in_order() -> None:
    """Each shutdown signal reaches the thread's handler with how many came so far; any of the
    four counts; SIGUSR1/SIGUSR2 neither count nor reach it; unknown numbers are dropped."""
    seen: list[tuple[signal.Signals, int]] = []
    watcher = SignalWatcher(lambda s, n: seen.append((s, n)))
    for sig in (signal.SIGTERM, signal.SIGUSR2, signal.SIGINT, signal.SIGHUP, signal.SIGALRM):
        watcher.deliver(int(sig))
    assert seen == [(signal.SIGTERM, 1), (signal.SIGINT, 2), (signal.SIGHUP, 3)]
    assert set(SIGNALS) == {signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT}
    assert set(USER_SIGNALS) == {signal.SIGUSR1, signal.SIGUSR2}


def test_watcher_acts_from_its_thread_while_the_main_thread_is_blocked() -> None:
    """A real signal reaches the handler while the main thread sleeps in synchronous code."""
    seen: list[tuple[signal.Signals, int, bool]] = []
    got = threading.Event()

    def handle(sig: signal.Signals, count: int) -> None:
        seen.append((sig, count, threading.current_thread() is threading.main_thread()))
        got.set()

    with SignalWatcher(handle):
        os.kill(os.getpid(), signal.SIGTERM)
        began = time.monotonic()
        while not got.is_set() and time.monotonic() - began < 5:
            time.sleep(0.01)  # blocking: the handler runs anyway, in the watcher's thread
    assert seen == [(signal.SIGTERM, 1, False)]


def test_watcher_puts_the_previous_handlers_and_wakeup_fd_back() -> None:
    """After the watcher closes, SIGTERM is handled as before it began and the wakeup fd is the
    previous one (none here)."""

    def mine(signum: int, frame: object) -> None:  # never called
        raise AssertionError

    previous = signal.signal(signal.SIGTERM, mine)
    try:
        with SignalWatcher(lambda s, n: None):
            assert signal.getsignal(signal.SIGTERM) is not mine
        assert signal.getsignal(signal.SIGTERM) is mine
        assert signal.set_wakeup_fd(-1) == -1
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_watcher_does_nothing_outside_the_main_thread() -> None:
    """Signals can only be handled in the main thread: elsewhere install() declines."""
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(SignalWatcher(print).install()))
    thread.start()
    thread.join(5)
    assert result == [False]


@pytest.mark.anyio
async def test_watcher_hands_every_signal_to_the_loop_without_waiting() -> None:
    """``on_loop`` gets each signal on the event loop, user signals included."""
    import anyio

    on_loop: list[tuple[signal.Signals, int]] = []
    loop = LoopHandle.current()
    watcher = SignalWatcher(lambda s, n: None, on_loop=(loop, lambda s, n: on_loop.append((s, n))))
    for sig in (signal.SIGUSR1, signal.SIGTERM, signal.SIGUSR2):
        watcher.deliver(int(sig))
    with anyio.fail_after(5):
        while len(on_loop) < 3:
            await anyio.sleep(0.01)
    assert on_loop == [(signal.SIGUSR1, 0), (signal.SIGTERM, 1), (signal.SIGUSR2, 1)]


@SLOW
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_while_the_app_is_still_importing_exits_0_with_one_line(
    tmp_path: Path, sig: signal.Signals
) -> None:
    """Before the handlers are installed (the app's imports take long): exit 0 at once, one line
    on stderr, no traceback; not death by signal (143) or a KeyboardInterrupt."""
    mark = tmp_path / "mark"
    proc = _process.spawn(
        tmp_path, "run", "tests.slow_import_app:App", env={"SLOW_IMPORT_MARK": str(mark)}
    )
    deadline = time.monotonic() + 30
    while not mark.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(sig)
    code, err = finish(proc, timeout=10)
    assert code == 0, err
    assert err.strip().splitlines() == [
        f"framework: {sig.name} before startup: nothing had started; exit code 0"
    ]
