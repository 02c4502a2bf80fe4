"""A stray cancellation is a failure, never a hang: a ``CancelledError`` that a service's own call
raises although nothing cancelled it (``task.cancel(); await task`` without catching).

The diamond of `tests.sample_apps` (a <- b, a <- c, {b, c} <- d), run for real with `framework run`
and a real SIGTERM, and in-process with `Application.stop()` under a bound.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest

from tests import _process
from tests._process import finish, with_sets
from tests.sample_apps import App, read_journal


def spawn(tmp_path: Path, *sets: str) -> subprocess.Popen[str]:
    journal = tmp_path / "journal.txt"
    return _process.spawn(
        tmp_path,
        "run",
        "tests.sample_apps:App",
        *with_sets(f'behaviour.journal="{journal}"', "lifecycle.shutdown_timeout=20", *sets),
    )


def journal(tmp_path: Path) -> list[str]:
    return read_journal(tmp_path / "journal.txt")


@pytest.mark.slow
def test_a_stop_that_raises_a_stray_cancellation_fails_and_the_others_still_stop(
    tmp_path: Path,
) -> None:
    """b's stop() re-raises a CancelledError: logged as a failed stop of b, a (which b depends
    on) still stops, exit 1, promptly (not at the watchdog's deadline), no "forced" wording."""
    proc = spawn(tmp_path, 'behaviour.stray_cancel={"b" = "stop"}')
    _process.wait_for(tmp_path / "journal.txt", "app ready")
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    took = time.monotonic() - began
    assert code == 1, err
    assert "a stopped" in journal(tmp_path) and "app stopped" in journal(tmp_path)
    assert "raised CancelledError although nothing cancelled it" in err
    assert "forced" not in err and "Traceback" not in err
    assert took < 15, f"the shutdown waited for a deadline: {took:.1f} s"


@pytest.mark.slow
def test_a_run_body_that_raises_a_stray_cancellation_is_a_crash(tmp_path: Path) -> None:
    """d's run() raises a CancelledError nobody asked for: a crash (orderly shutdown, exit 1),
    not a body that returned (which would leave the app running with a dead worker)."""
    proc = spawn(tmp_path, 'behaviour.stray_cancel={"d" = "run"}')
    code, err = finish(proc, timeout=30)
    assert code == 1, err
    assert "d stray run" in journal(tmp_path) and "a stopped" in journal(tmp_path)
    assert "raised CancelledError although nothing cancelled it" in err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_stray_cancellation_from_run_follows_the_restart_policy(tmp_path: Path) -> None:
    """With ``restart = "on-failure"`` the crash is restarted like any other: d's run() raises it
    on every run, so d is restarted restart_max (2) times, then the orderly shutdown and exit 1."""
    proc = spawn(
        tmp_path,
        'behaviour.stray_cancel={"d" = "run"}',
        'services.d.restart="on-failure"',
        "services.d.restart_max=2",
        "services.d.restart_backoff=0.05",
    )
    code, err = finish(proc, timeout=30)
    assert code == 1, err
    assert journal(tmp_path).count("d stray run") == 3, journal(tmp_path)
    assert err.count("raised CancelledError although nothing cancelled it") >= 3, err
    assert "a stopped" in journal(tmp_path) and "Traceback" not in err


@pytest.mark.slow
def test_a_start_that_raises_a_stray_cancellation_fails_the_startup_cleanly(
    tmp_path: Path,
) -> None:
    """b's start() raises it: a failed start, rolled back, exit 1, nothing after the last line."""
    proc = spawn(tmp_path, 'behaviour.stray_cancel={"b" = "start"}')
    code, err = finish(proc, timeout=30)
    assert code == 1, err
    assert "a stopped" in journal(tmp_path) and "d start" not in journal(tmp_path)
    assert "Traceback" not in err
    assert "exit code 1" in err.strip().splitlines()[-1]


@pytest.mark.parametrize("call", ["stop", "run"])
def test_application_stop_returns_within_its_bound(tmp_path: Path, call: str) -> None:
    """In-process: ``await app.stop()`` returns (within the shutdown bound) whatever raised the
    stray cancellation, and every service that began is stopped or failed, none left running."""

    async def main() -> None:
        app = App(
            config_dir=tmp_path,
            overrides={
                "behaviour.journal": str(tmp_path / "journal.txt"),
                "behaviour.stray_cancel": {"b": call},
                "lifecycle.shutdown_timeout": 5,
            },
        )
        with anyio.fail_after(10):
            await app.start()
            await anyio.sleep(0.5)
            await app.stop()
        assert app.exit_code == 1

    anyio.run(main)
    assert "a stopped" in journal(tmp_path)
