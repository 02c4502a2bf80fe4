"""Recycling: a worker that has served enough requests, or grown too big, is replaced the rolling way.

A worker's heartbeat carries the HTTP requests it has served and its resident memory
(`framework._runtime.heartbeat`). Once it has served ``process.max_requests`` plus its own random
0..``process.max_requests_jitter`` (drawn when it started, as gunicorn does, so workers do not
all recycle at once), or its memory exceeds ``process.max_memory_mib``, `Recycler.tick`:

1. starts its successor in the same slot; the old worker keeps serving meanwhile;
2. once the successor reports ``READY=1``, sends the old one SIGTERM (a graceful stop: it drains
   its requests, the successor accepts the new connections) and logs the replacement with its
   reason; a retiring worker still running after the shutdown bound is killed;
3. a successor that exits or is not ready within ``process.ready_timeout`` is killed; the old
   worker keeps serving and its replacement is tried again after ``process.restart_backoff_max``.

Nothing here blocks: each tick looks at the workers once and returns.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from framework._process.workers import Pool, Worker

__all__ = ("MIB", "Recycler", "recycle_reason")

MIB = 1024 * 1024


def recycle_reason(worker: Worker, max_memory_mib: float) -> str | None:
    """``max_requests`` or ``max_memory`` when ``worker`` is due for replacement, else ``None``."""
    if worker.request_limit and worker.requests >= worker.request_limit:
        return "max_requests"
    if max_memory_mib and worker.rss > max_memory_mib * MIB:
        return "max_memory"
    return None


class Recycler:
    """Replaces the workers of ``pool`` that are due, each successor ready before the old one stops."""

    def __init__(self, pool: Pool, stop_bound: float) -> None:
        self.pool = pool
        self.stop_bound = stop_bound
        self._retry_at: dict[int, float] = {}  # pid -> no new successor before then

    def tick(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for worker in list(self.pool.workers):
            if not worker.alive:
                continue
            if worker.retiring:
                self._check_retiring(worker, now)
            elif worker.successor is not None:
                self._check_successor(worker, worker.successor, now)
            elif worker.ready and now >= self._retry_at.get(worker.pid, 0.0):
                reason = recycle_reason(worker, self.pool.process.max_memory_mib)
                if reason is not None:
                    self._begin(worker, reason)

    def _begin(self, old: Worker, reason: str) -> None:
        old.reason = reason
        old.successor = self.pool.spawn(old.slot)
        self.pool.log.info(
            f"worker {old.pid} (slot {old.slot}) is due for replacement ({self._why(old)}): "
            f"starting worker {old.successor.pid}"
        )

    def _check_successor(self, old: Worker, new: Worker, now: float) -> None:
        if new.ready:
            old.successor = None
            old.retiring = True
            old.retire_by = now + self.stop_bound
            old.terminate()
            self.pool.count(old.reason)
            self.pool.log.bind(reason=old.reason).info(
                f"worker {old.pid} (slot {old.slot}) replaced by worker {new.pid} "
                f"(reason: {old.reason}; {self._why(old)}); stopping it gracefully"
            )
            return
        timeout = self.pool.process.ready_timeout
        if new.alive and now - new.started_at < timeout:
            return
        why = new.describe_exit() if not new.alive else f"was not ready within {timeout:g} s"
        self.pool.discard(new)
        old.successor = None
        retry = self.pool.process.restart_backoff_max
        self._retry_at[old.pid] = now + retry
        self.pool.log.error(
            f"the successor {new.pid} of worker {old.pid} (slot {old.slot}) {why}; worker "
            f"{old.pid} keeps serving, its replacement ({old.reason}) is tried again in {retry:g} s"
        )

    def _check_retiring(self, worker: Worker, now: float) -> None:
        if worker.retire_by is not None and now >= worker.retire_by:
            worker.retire_by = None
            self.pool.log.error(
                f"worker {worker.pid} (slot {worker.slot}) did not stop within "
                f"{self.stop_bound:g} s of its replacement; killing it"
            )
            self.pool.discard(worker)

    def _why(self, worker: Worker) -> str:
        if worker.reason == "max_requests":
            return f"served {worker.requests} requests, its limit {worker.request_limit}"
        rss = worker.rss / MIB
        return f"resident memory {rss:.0f} MiB > {self.pool.process.max_memory_mib:g} MiB"
