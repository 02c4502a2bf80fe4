"""Hung workers: told by their missing heartbeats, their stacks logged, killed, replaced.

Each worker's event loop reports to the supervisor every `beat_interval` seconds
(`framework._runtime.heartbeat`). A ready worker that has not reported for
``process.worker_timeout`` seconds is hung: the supervisor sends it `STACKS_SIGNAL`, on which
faulthandler (armed in the worker) writes the Python stacks of all its threads to the worker's
stacks pipe from the signal handler, even while the loop is blocked; the supervisor logs them as
one entry naming the worker's pid, then SIGKILLs the worker, which the pool replaces after the
usual backoff (reason ``timeout``). The other workers keep serving: nothing here waits on them.

Under systemd's watchdog, the supervisor pings ``WATCHDOG=1`` only while `all_in_time`.
"""

from __future__ import annotations

import os
import select
import signal
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

from framework._runtime.stacks import STACKS_SIGNAL

if TYPE_CHECKING:
    from loguru import Logger

    from framework._config.settings import ProcessSettings
    from framework._process.workers import Worker

__all__ = ("STACKS_WAIT", "all_in_time", "beat_interval", "collect_stacks", "end_hung", "silence")

BEAT_EVERY = 1.0
"""The most seconds between two heartbeats of a worker."""

BEAT_RECYCLING = 0.25
"""The most seconds between two heartbeats with recycling on: the figures it decides on are fresh."""

STACKS_WAIT = 1.0
"""How long a hung worker's stacks are waited for before it is killed anyway."""

STACKS_QUIET = 0.1
"""Once its stacks began to arrive, how long a pause ends them."""


def beat_interval(process: ProcessSettings, watchdog: float | None) -> float | None:
    """Seconds between a worker's heartbeats; ``None`` when nothing needs them.

    At most `BEAT_EVERY` (`BEAT_RECYCLING` with ``max_requests`` or ``max_memory_mib``), a quarter
    of ``worker_timeout`` and the supervisor's own watchdog interval, so a worker in good health
    is never late.
    """
    wanted = [BEAT_EVERY]
    if process.worker_timeout > 0:
        wanted.append(process.worker_timeout / 4)
    if watchdog is not None:
        wanted.append(watchdog)
    if process.max_requests or process.max_memory_mib:
        wanted.append(BEAT_RECYCLING)
    limits = (process.worker_timeout, process.max_requests, process.max_memory_mib)
    if not any(limits) and watchdog is None:
        return None
    return min(wanted)


def silence(worker: Worker, now: float) -> float | None:
    """Seconds since a ready, running worker last reported; ``None`` for one not ready or stopping."""
    if not worker.ready or worker.retiring or worker.ready_at is None:
        return None
    return now - max(worker.beat_at or 0.0, worker.ready_at)


def all_in_time(workers: Iterable[Worker], limit: float, now: float) -> bool:
    """Whether every ready worker has reported within ``limit`` seconds."""
    return all((silence(w, now) or 0.0) <= limit for w in workers)


def end_hung(worker: Worker, silent: float, timeout: float, log: Logger) -> None:
    """Log ``worker``'s stacks (one entry naming its pid), then SIGKILL it; the pool replaces it."""
    worker.reason = "timeout"
    worker.send(STACKS_SIGNAL)
    stacks = collect_stacks(worker.stacks, STACKS_WAIT)
    log.bind(pid=worker.pid, reason="timeout").error(
        f"worker {worker.pid} (slot {worker.slot}) is hung: its event loop has not reported for "
        f"{silent:.1f} s (process.worker_timeout = {timeout:g}); killing it. Its threads' stacks:\n"
        + (stacks or "(none were written)")
    )
    worker.send(signal.SIGKILL)


def collect_stacks(fd: int | None, seconds: float) -> str:
    """What arrives on the stacks pipe ``fd`` within ``seconds`` (ending at a short pause)."""
    if fd is None:
        return ""
    chunks: list[bytes] = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        wait = min(left, STACKS_QUIET) if chunks else left
        readable, _, _ = select.select([fd], [], [], wait)
        if not readable:
            if chunks:
                break
            continue
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            continue
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks).decode("utf-8", "replace").rstrip("\n")
