"""What a worker is started with, and the backoff of its replacements."""

from __future__ import annotations

import socket
import sys
import time

import pytest
from loguru import logger

from framework._config.settings import ProcessSettings
from framework._process.workers import Pool, Worker, worker_command
from framework._runtime.systemd import worker_slot


def test_worker_command_runs_the_same_target_and_options_without_a_supervisor() -> None:
    """python -m framework run TARGET OPTIONS, and process.workers=0 last (the later --set wins)."""
    command = worker_command("shop.app:App", ["--env", "prod", "--set", "process.workers=4"])
    assert command[:5] == [sys.executable, "-m", "framework", "run", "shop.app:App"]
    assert command[5:] == [
        "--env",
        "prod",
        "--set",
        "process.workers=4",
        "--set",
        "process.workers=0",
    ]


def test_worker_slot_comes_from_the_environment() -> None:
    """FRAMEWORK_WORKER names the slot in a worker; elsewhere None."""
    assert worker_slot({"FRAMEWORK_WORKER": "3"}) == 3
    assert worker_slot({}) is None and worker_slot({"FRAMEWORK_WORKER": "x"}) is None


@pytest.fixture
def pool() -> Pool:
    settings = ProcessSettings(restart_backoff=0.5, restart_backoff_max=4)
    return Pool([], [], 2, settings, {}, logger)


def dead_worker(slot: int, ready_for: float | None = None) -> Worker:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.close()
    now = time.monotonic()
    ready_at = None if ready_for is None else now - ready_for
    return Worker(pid=0, slot=slot, notify=sock, started_at=now, ready_at=ready_at, wait_status=256)


def test_the_backoff_doubles_up_to_the_cap_and_resets_after_a_stable_run(pool: Pool) -> None:
    """0.5, 1, 2, 4, 4 s for a slot whose replacements keep dying; per slot; reset once stable."""
    now = time.monotonic()
    delays = [pool._next_backoff(dead_worker(1), now) for _ in range(5)]
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert pool._next_backoff(dead_worker(2), now) == 0.5
    assert pool._next_backoff(dead_worker(1, ready_for=5.0), time.monotonic()) == 0.5
