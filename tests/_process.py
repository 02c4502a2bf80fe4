"""What the subprocess tests share: run `framework` for real, wait on journals, free ports."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.sample_apps import read_journal

REPO = Path(__file__).resolve().parent.parent


def framework_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child `framework` process: this checkout importable."""
    return {**os.environ, "PYTHONPATH": str(REPO), **(extra or {})}


def run_cli(
    cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m framework ARGS` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "framework", *args],
        cwd=cwd,
        env=framework_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def spawn(cwd: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """`python -m framework ARGS` in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "framework", *args],
        cwd=cwd,
        env=framework_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def with_sets(*sets: str) -> list[str]:
    """`--set` options."""
    return [arg for s in sets for arg in ("--set", s)]


def wait_for(journal: Path, line: str, timeout: float = 20.0) -> None:
    """Until ``line`` is in the journal (polled, bounded)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if line in read_journal(journal):
            return
        time.sleep(0.01)
    raise AssertionError(f"{line!r} not in the journal after {timeout} s: {read_journal(journal)}")


def finish(proc: subprocess.Popen[str], timeout: float = 30.0) -> tuple[int, str]:
    """Wait for the exit; kill and fail past ``timeout``. Returns (exit code, stderr)."""
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(f"the process did not exit within {timeout} s:\n{err}") from None
    return proc.returncode, err


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
