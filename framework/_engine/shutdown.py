"""The reverse-order stop: a service stops once all its dependents have stopped, each bounded.

Each stop gets ``min(its stop bound, what is left of the shutdown budget)``, after the service's
work has ended (`ReverseStop.finish_work`: the warm stop). The stops ready to go run concurrently
(`framework._engine.walk`). A single watchdog task releases the dependencies of a stop that
overruns its deadline by `STOP_GRACE` while ignoring cancellation. The tasks are detached: the shutdown returns once every
service is stopped or given up on, without waiting for a stop stuck in code that ignores
cancellation. Used by `framework._engine.lifecycle.Lifecycle` for both the shutdown and the rollback.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import anyio

from framework._engine.cancellation import is_stray, stray
from framework._engine.detached import DetachedTasks
from framework._engine.errors import ServiceError
from framework._engine.events import (
    Bound,
    EventBus,
    Outcome,
    Phase,
    ServiceStopFailed,
    ServiceStopped,
    ServiceStopping,
)
from framework._engine.graph import DependencyGraph
from framework._engine.records import ServiceRecord, deadline
from framework._engine.service import (
    ServiceState,
    ask_to_stop,
    set_service_state,
    spawned_tasks,
    stopping_notice,
)
from framework._engine.timing import STOP_GRACE
from framework._engine.walk import Timer, Walk

__all__ = ("ReverseStop",)


@dataclass
class _InFlight:
    """One stop in progress."""

    began: float
    deadline: float
    bound: Bound
    scope: anyio.CancelScope


class ReverseStop:
    """One run of the reverse-order stop over the services whose start began."""

    def __init__(
        self,
        graph: DependencyGraph,
        records: Mapping[str, ServiceRecord],
        bus: EventBus,
        errors: list[ServiceError],
        *,
        budget: Bound,
        budget_end: float,
        clock: Callable[[], float] = anyio.current_time,
    ) -> None:
        self.graph, self.records, self.bus, self.errors = graph, records, bus, errors
        self.clock = clock
        self.budget, self.budget_end = budget, budget_end
        begun = {name for name, rec in records.items() if rec.began}
        dependents = graph.dependents
        if len(begun) == len(records):  # all began (not a rollback): every dependent counts
            self.waiting = {name: len(dependents[name]) for name in begun}
        else:
            self.waiting = {name: len(begun.intersection(dependents[name])) for name in begun}
        self.remaining = len(begun)
        self.released: set[str] = set()
        self.inflight: dict[str, _InFlight] = {}
        self.watch_until = math.inf
        self.wake = anyio.Event()
        self.done = anyio.Event()
        self.tasks = DetachedTasks()
        self.walk = Walk(
            self.step, lambda take, name: self.tasks.start_soon(take, name, name="stop")
        )

    async def run(self) -> None:
        """Stop everything that began; on cancellation (forced), cancel the stops in flight."""
        try:
            if not self.remaining:
                return
            self.tasks.start_soon(self.watchdog, name="shutdown watchdog")
            self.walk.add(name for name, n in self.waiting.items() if n == 0)
            await self.done.wait()
        finally:
            if not self.done.is_set():  # forced: cancel the stops in flight and the watchdog
                self.remaining = 0
                for inflight in list(self.inflight.values()):
                    inflight.scope.cancel()
                self.wake.set()
            self.give_up_on_unbegun()

    async def step(self, name: str, timer: Timer) -> list[str]:
        await self.stop_one(name, timer)
        return self.release(name)

    def release(self, name: str) -> list[str]:
        """Mark ``name`` done; return its dependencies that are now ready to stop."""
        if name in self.released:
            return []
        self.released.add(name)
        self.remaining -= 1
        if not self.remaining:
            self.wake.set()
            self.done.set()
        ready = []
        for dep in self.graph.deps[name]:
            if dep in self.waiting:
                self.waiting[dep] -= 1
                if self.waiting[dep] == 0:
                    ready.append(dep)
        return ready

    def bound_of(self, rec: ServiceRecord, began: float) -> tuple[Bound, float]:
        """min(its stop bound, what is left of the budget), and the deadline that makes."""
        bound, end = rec.stop_bound, deadline(began, rec.stop_bound.seconds)
        if self.budget_end < end:
            left = max(0.0, self.budget_end - began)
            bound, end = Bound(left, f"what was left of {self.budget}"), self.budget_end
        return bound, end

    async def stop_one(self, name: str, timer: Timer) -> None:
        """End its work (`finish_work`: ``run()`` and spawned tasks), then ``stop()`` within
        min(stop bound, what is left)."""
        rec = self.records[name]
        self.bus.emit_new(ServiceStopping, name)
        set_service_state(rec.service, ServiceState.STOPPING)
        began = self.clock()
        bound, _ = self.bound_of(rec, began)
        outcome = Outcome.OK
        error: Exception | None = None
        try:
            tasks = spawned_tasks(rec.service, create=False)
            if rec.run_done is not None or (tasks is not None and tasks.running):
                outcome = await self.finish_work(rec, began)
            if outcome is Outcome.CANCELLED:  # forced while it drained: stop() is not called
                self.record(rec, began, bound, outcome)
                return
            if not rec.stopped_for_restart:  # a restart stopped it, and it did not start again
                now = self.clock()
                bound, end = self.bound_of(rec, now)
                self.track(name, now, end, bound, timer.scope)
                await timer.run(rec.service.stop, end)
        except anyio.get_cancelled_exc_class():
            if is_stray():  # stop() re-raised a cancellation of its own: a failed stop
                outcome, error = Outcome.FAILED, stray("stop()")
            elif not timer.expired:
                self.record(rec, began, bound, Outcome.CANCELLED)  # forced by a second signal
                raise
            else:
                outcome = Outcome.TIMED_OUT
        except Exception as exc:
            outcome, error = Outcome.FAILED, exc
        finally:
            self.inflight.pop(name, None)
        self.record(rec, began, bound, outcome, error)

    def track(
        self, name: str, began: float, end: float, bound: Bound, scope: anyio.CancelScope
    ) -> None:
        """``name``'s current phase ends by ``end``: the watchdog releases its dependencies past it."""
        self.inflight[name] = _InFlight(began, end, bound, scope)
        if end + STOP_GRACE < self.watch_until:
            self.wake.set()

    async def finish_work(self, rec: ServiceRecord, began: float) -> Outcome:
        """The warm stop: until the drain bound (``services.<name>.drain_timeout``, default the
        stop bound; within the shutdown budget), a ``run()`` that reads ``self.stopping`` and the
        spawned tasks may finish on their own; then a ``run()`` still running is cancelled (cold)
        and waited for, by its stop bound. TIMED_OUT when it outlived that too; CANCELLED when
        the shutdown was forced meanwhile."""
        drain_bound = self.drain_bound(rec)
        drain_end = min(deadline(began, drain_bound.seconds), self.budget_end)
        tasks = spawned_tasks(rec.service, create=False)
        ask_to_stop(rec.service)  # set already at the first moment of shutdown; not in a rollback
        outcome = Outcome.OK
        with anyio.CancelScope() as forced:  # what a forced shutdown cancels (`track`)
            self.track(rec.name, began, drain_end, drain_bound, forced)
            if rec.run_done is not None:
                if stopping_notice(rec.service, create=False) is not None:  # it can finish warm
                    with anyio.CancelScope(deadline=drain_end):
                        await rec.run_done.wait()
                rec.run_ended = "warm" if rec.run_done.is_set() else "cold"
                if not rec.run_done.is_set():
                    now = self.clock()
                    bound, end = self.bound_of(rec, now)
                    self.track(rec.name, now, end, bound, forced)
                    if rec.run_scope is not None:
                        rec.run_scope.cancel()
                    with anyio.CancelScope(deadline=end) as cold:
                        await rec.run_done.wait()
                    outcome = Outcome.TIMED_OUT if cold.cancelled_caught else outcome
            if tasks is not None and tasks.running:
                rec.tasks_cancelled = tuple(await tasks.finish(drain_end))
        return Outcome.CANCELLED if forced.cancelled_caught else outcome

    def drain_bound(self, rec: ServiceRecord) -> Bound:
        """``services.<name>.drain_timeout``, else the service's stop bound."""
        if rec.drain_seconds is None:
            return rec.stop_bound
        return Bound(rec.drain_seconds, f"services.{rec.name}.drain_timeout")

    async def watchdog(self) -> None:
        """Release the dependencies of stops that ignore cancellation past their deadline."""
        while self.remaining:
            self.wake = anyio.Event()
            self.watch_until = min((f.deadline for f in self.inflight.values()), default=math.inf)
            self.watch_until += STOP_GRACE
            with anyio.CancelScope(deadline=self.watch_until):
                await self.wake.wait()
            now = self.clock()
            for name, f in list(self.inflight.items()):
                if f.deadline + STOP_GRACE <= now and name not in self.released:
                    self.record(self.records[name], f.began, f.bound, Outcome.TIMED_OUT)
                    self.walk.add(self.release(name))

    def give_up_on_unbegun(self) -> None:
        """Forced: a service whose stop never began is recorded as cancelled."""
        for rec in self.records.values():
            if rec.began and rec.stop_outcome is None:
                self.record(rec, self.clock(), rec.stop_bound, Outcome.CANCELLED)

    def record(
        self,
        rec: ServiceRecord,
        began: float,
        bound: Bound,
        outcome: Outcome,
        error: BaseException | None = None,
    ) -> None:
        if rec.stop_outcome is not None:
            return  # already reported (a stop that overran its bound, finishing late)
        name = rec.name
        rec.stop_duration = duration = self.clock() - began
        rec.stop_outcome = outcome
        if outcome is Outcome.OK:
            set_service_state(rec.service, ServiceState.STOPPED)
            self.bus.emit_new(ServiceStopped, name, duration)
            return
        set_service_state(rec.service, ServiceState.FAILED)
        err = ServiceError(name, Phase.STOP, outcome, bound=bound, cause=error)
        rec.errors += (err,)
        self.errors.append(err)
        self.bus.emit(ServiceStopFailed(name, duration, outcome, bound, error))


def left_behind(records: Iterable[ServiceRecord]) -> bool:
    """Whether a stop was given up on (timed out, or cancelled by force) and may still run."""
    given_up = (Outcome.TIMED_OUT, Outcome.CANCELLED)
    return any(rec.stop_outcome in given_up for rec in records)
