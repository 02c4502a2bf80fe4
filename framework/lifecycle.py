"""The lifecycle engine: start along the dependency graph, stop in exact reverse, every step bounded.

Backend-neutral (anyio): runs on asyncio and trio.

Start: a service starts as soon as all its own dependencies have started (not layer by layer), each
``start()`` bounded by its start bound, the whole startup by ``startup_timeout``. A start that fails,
times out or is cancelled cancels the starts in flight; services that never began are never started;
every service whose start began is then stopped in reverse (the rollback).

Stop: a service stops as soon as all its dependents have stopped, concurrently where independent.
Each stop gets ``min(its stop bound, what is left of shutdown_timeout)``. A stop that fails or times
out is recorded and the shutdown goes on; a stop that ignores cancellation is left running once its
bound has passed, and its dependencies are stopped anyway.
"""

from __future__ import annotations

import enum
import math
import sys
from collections.abc import Callable, Coroutine, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from framework._detached import DetachedTasks
from framework.errors import FrameworkError, ServiceError, ShutdownError, StartupError
from framework.events import (
    Bound,
    Event,
    EventHandler,
    Outcome,
    Phase,
    RollingBack,
    ServiceCrashed,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStarting,
    ServiceStopFailed,
    ServiceStopped,
    ServiceStopping,
    ShutdownFinished,
    ShutdownStarted,
    StartupFinished,
)
from framework.graph import DependencyGraph
from framework.service import Service, ServiceState, set_service_state

__all__ = ("Lifecycle", "LifecycleState", "ServiceRecord")

CrashHandler = Callable[[str, BaseException], None]


class Spawner(Protocol):
    """Where ``run()`` bodies go: an anyio task group, or anything with its ``start_soon``."""

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: object = None
    ) -> None: ...


_STARTUP_TIMEOUT = Bound(60.0, "lifecycle.startup_timeout")
_SHUTDOWN_TIMEOUT = Bound(30.0, "lifecycle.shutdown_timeout")
_START_TIMEOUT = Bound(30.0, "lifecycle.start_timeout")
_STOP_TIMEOUT = Bound(10.0, "lifecycle.stop_timeout")


class LifecycleState(enum.StrEnum):
    IDLE = "idle"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(eq=False)
class ServiceRecord:
    """What happened to one service: the timeline report is made of these."""

    name: str
    service: Service
    start_bound: Bound
    stop_bound: Bound
    start_outcome: Outcome = Outcome.NEVER_STARTED
    start_began: float | None = None
    start_duration: float | None = None
    stop_outcome: Outcome | None = None
    stop_duration: float | None = None
    errors: list[ServiceError] = field(default_factory=list)
    run_scope: anyio.CancelScope | None = field(default=None, repr=False)
    run_done: anyio.Event | None = field(default=None, repr=False)

    @property
    def began(self) -> bool:
        return self.start_began is not None


class Lifecycle:
    """Starts and stops a set of services along their dependency graph.

    ``start()`` raises `StartupError` after rolling back; ``stop()`` raises `ShutdownError` when a
    stop failed or timed out (after stopping every other service). ``stop()`` is idempotent.
    """

    def __init__(
        self,
        services: Mapping[str, Service],
        graph: DependencyGraph,
        *,
        start_bounds: Mapping[str, Bound] | None = None,
        stop_bounds: Mapping[str, Bound] | None = None,
        startup_timeout: Bound = _STARTUP_TIMEOUT,
        shutdown_timeout: Bound = _SHUTDOWN_TIMEOUT,
        on_event: EventHandler | None = None,
        on_crash: CrashHandler | None = None,
    ) -> None:
        if set(services) != set(graph.deps):
            raise FrameworkError("the services and the dependency graph name different services")
        self.graph = graph
        self.records: dict[str, ServiceRecord] = {
            name: ServiceRecord(
                name,
                services[name],
                (start_bounds or {}).get(name, _START_TIMEOUT),
                (stop_bounds or {}).get(name, _STOP_TIMEOUT),
            )
            for name in graph.order
        }
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.state = LifecycleState.IDLE
        self.start_errors: list[ServiceError] = []
        self.stop_errors: list[ServiceError] = []
        self._handlers: list[EventHandler] = [on_event] if on_event else []
        self._on_crash = on_crash
        self._start_scope: anyio.CancelScope | None = None
        self._abort_reason: str | None = None
        self._stop_done: anyio.Event | None = None

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        self._handlers.append(handler)

    def emit(self, event: Event) -> None:
        for handler in self._handlers:
            try:
                handler(event)
            except Exception as exc:  # a broken consumer must not break the lifecycle
                print(f"framework: event handler {handler!r} failed: {exc!r}", file=sys.stderr)

    # -- start ----------------------------------------------------------------------------------

    def abort_start(self, reason: str) -> None:
        """Abort a startup in progress (a signal arrived): in-flight starts are cancelled."""
        if self.state is LifecycleState.STARTING and self._start_scope is not None:
            self._abort_reason = reason
            self._start_scope.cancel()

    async def start(self, run_group: Spawner | None = None) -> None:
        """Start every service in dependency order; ``run()`` bodies go into ``run_group``."""
        if self.state is not LifecycleState.IDLE:
            raise FrameworkError(f"cannot start: the lifecycle is {self.state.value}")
        if run_group is None and any(callable(getattr(r.service, "run", None)) for r in self):
            raise FrameworkError("services define run(): pass a task group to start()")
        self.state = LifecycleState.STARTING
        began = anyio.current_time()
        missing = {name: len(deps) for name, deps in self.graph.deps.items()}
        failed = False

        async def start_chain(rec: ServiceRecord | None, tg: TaskGroup) -> None:
            # go on inline with one newly ready dependent; spawn tasks only for the others
            nonlocal failed
            while rec is not None:
                if tg.cancel_scope.cancel_called or scope.cancel_called:
                    return  # startup already failed or was aborted: this one never begins
                if not await self._start_service(rec, run_group):
                    failed = True
                    tg.cancel_scope.cancel()
                    return
                ready = []
                for dependent in self.graph.dependents[rec.name]:
                    missing[dependent] -= 1
                    if missing[dependent] == 0:
                        ready.append(self.records[dependent])
                for other in ready[1:]:
                    tg.start_soon(start_chain, other, tg, name=f"start {other.name}")
                rec = ready[0] if ready else None

        scope = self._start_scope = anyio.CancelScope(
            deadline=_deadline(began, self.startup_timeout.seconds)
        )
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    for name, n in missing.items():
                        if n == 0:
                            tg.start_soon(start_chain, self.records[name], tg, name=f"start {name}")
        except anyio.get_cancelled_exc_class():
            # cancelled from outside: roll back what began, shielded, then let it propagate
            with anyio.CancelScope(shield=True):
                await self._roll_back("startup was cancelled")
            raise
        finally:
            self._start_scope = None

        duration = anyio.current_time() - began
        if scope.cancelled_caught and not failed and self._abort_reason is None:
            for rec in self:
                if rec.start_outcome is Outcome.CANCELLED:  # in flight when the budget ran out
                    rec.start_outcome = Outcome.TIMED_OUT
                    error = ServiceError(
                        rec.name, Phase.START, Outcome.TIMED_OUT, bound=self.startup_timeout
                    )
                    rec.errors[-1:] = [error]
                    self.start_errors.append(error)
            if not self.start_errors:
                self.start_errors.append(
                    ServiceError("*", Phase.START, Outcome.TIMED_OUT, bound=self.startup_timeout)
                )
        ok = not (failed or scope.cancelled_caught)
        self.emit(StartupFinished(duration, ok))
        if ok:
            self.state = LifecycleState.STARTED
            return
        reason = self._abort_reason or (
            str(self.start_errors[0]) if self.start_errors else "startup failed"
        )
        await self._roll_back(reason)
        raise StartupError([*self.start_errors, *self.stop_errors], reason)

    async def _start_service(self, rec: ServiceRecord, run_group: Spawner | None) -> bool:
        name, service, bound = rec.name, rec.service, rec.start_bound
        self.emit(ServiceStarting(name))
        set_service_state(service, ServiceState.STARTING)
        rec.start_began = began = anyio.current_time()
        error: BaseException | None = None
        outcome = Outcome.OK
        try:
            with anyio.CancelScope(deadline=_deadline(began, bound.seconds)) as scope:
                await service.start()
            if scope.cancelled_caught:
                outcome = Outcome.TIMED_OUT
        except anyio.get_cancelled_exc_class():
            outcome = Outcome.CANCELLED
            self._record_start(rec, outcome, None)
            raise
        except Exception as exc:
            outcome, error = Outcome.FAILED, exc
        self._record_start(rec, outcome, error)
        if outcome is not Outcome.OK:
            return False
        run = getattr(service, "run", None)
        if callable(run) and run_group is not None:
            rec.run_done = anyio.Event()
            run_group.start_soon(self._run_body, rec, run, name=f"{name}.run")
        return True

    def _record_start(
        self, rec: ServiceRecord, outcome: Outcome, error: BaseException | None
    ) -> None:
        assert rec.start_began is not None
        rec.start_duration = duration = anyio.current_time() - rec.start_began
        rec.start_outcome = outcome
        if outcome is Outcome.OK:
            set_service_state(rec.service, ServiceState.STARTED)
            self.emit(ServiceStarted(rec.name, duration))
            return
        set_service_state(rec.service, ServiceState.FAILED)
        err = ServiceError(rec.name, Phase.START, outcome, bound=rec.start_bound, cause=error)
        rec.errors.append(err)
        if outcome is not Outcome.CANCELLED:
            self.start_errors.append(err)
        self.emit(ServiceStartFailed(rec.name, duration, outcome, rec.start_bound, error))

    async def _run_body(self, rec: ServiceRecord, run: Callable[[], object]) -> None:
        assert rec.run_done is not None
        try:
            with anyio.CancelScope() as rec.run_scope:
                await run()  # type: ignore[misc]
        except Exception as exc:
            err = ServiceError(rec.name, Phase.RUN, Outcome.FAILED, cause=exc)
            rec.errors.append(err)
            self.emit(ServiceCrashed(rec.name, exc))
            if self._on_crash is not None:
                self._on_crash(rec.name, exc)
        finally:
            rec.run_done.set()

    async def _roll_back(self, reason: str) -> None:
        begun = tuple(rec.name for rec in self if rec.began)
        self.emit(RollingBack(reason, begun))
        await self._stop_all(reason="rollback")

    # -- stop -----------------------------------------------------------------------------------

    async def stop(
        self, reason: str = "stop requested", *, budget: float | None = None, announce: bool = True
    ) -> None:
        """Stop every started service in reverse dependency order. Idempotent.

        ``budget`` is what is left of ``shutdown_timeout`` (when part of it was spent before, on the
        shutdown delay); by default the whole of it. With ``announce`` false the caller has emitted
        `ShutdownStarted` already (at the first moment of shutdown, before a delay).
        """
        if self.state is LifecycleState.IDLE:
            self.state = LifecycleState.STOPPED
            return
        if self.state is LifecycleState.STARTING:
            raise FrameworkError("cannot stop while starting: abort the startup instead")
        if self.state is LifecycleState.STOPPED:
            return
        if self.state is LifecycleState.STOPPING:
            assert self._stop_done is not None
            await self._stop_done.wait()
            return
        if announce:
            self.emit(ShutdownStarted(reason))
        await self._stop_all(reason, budget)
        if self.stop_errors:
            raise ShutdownError(self.stop_errors)

    async def _stop_all(self, reason: str, budget: float | None = None) -> None:
        self.state = LifecycleState.STOPPING
        self._stop_done = anyio.Event()
        began = anyio.current_time()
        seconds = self.shutdown_timeout.seconds if budget is None else budget
        run = _Shutdown(self, _deadline(began, seconds))
        try:
            await run.run()
        finally:
            for rec in self:
                if rec.began and rec.stop_outcome is None:  # forced: its stop never began
                    self._record_stop(rec, anyio.current_time(), rec.stop_bound, Outcome.CANCELLED)
            self.state = LifecycleState.STOPPED
            self._stop_done.set()
            self.emit(ShutdownFinished(anyio.current_time() - began, not self.stop_errors))

    def _record_stop(
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
        rec.stop_duration = duration = anyio.current_time() - began
        rec.stop_outcome = outcome
        if outcome is Outcome.OK:
            set_service_state(rec.service, ServiceState.STOPPED)
            self.emit(ServiceStopped(name, duration))
            return
        set_service_state(rec.service, ServiceState.FAILED)
        err = ServiceError(name, Phase.STOP, outcome, bound=bound, cause=error)
        rec.errors.append(err)
        self.stop_errors.append(err)
        self.emit(ServiceStopFailed(name, duration, outcome, bound, error))

    def __iter__(self) -> Iterator[ServiceRecord]:
        return iter(self.records.values())


# How long past its deadline a stop that ignores cancellation is waited for before it is left behind
# and its dependencies are stopped anyway.
_GRACE = 0.05


def _deadline(now: float, seconds: float | None) -> float:
    return math.inf if seconds is None else now + seconds


class _Shutdown:
    """One run of the reverse-order stop.

    Each stop runs inline in a task that then goes on with the next ready service (spawning tasks
    only for the others), so a chain costs one task. A single watchdog task releases the
    dependencies of a stop that overruns its deadline by ``_GRACE`` while ignoring cancellation.
    The tasks are detached: the shutdown returns once every service is stopped or given up on,
    without waiting for a stop stuck in code that ignores cancellation.
    """

    def __init__(self, lifecycle: Lifecycle, budget_end: float) -> None:
        self.lc = lifecycle
        self.budget_end = budget_end
        graph, records = lifecycle.graph, lifecycle.records
        begun = {name for name, rec in records.items() if rec.began}
        self.waiting = {
            name: sum(1 for d in graph.dependents[name] if d in begun) for name in begun
        }
        self.remaining = len(begun)
        self.released: set[str] = set()
        # name -> (began, deadline, bound, scope) of the stops in flight
        self.inflight: dict[str, tuple[float, float, Bound, anyio.CancelScope]] = {}
        self.watch_until = math.inf
        self.wake = anyio.Event()
        self.done = anyio.Event()
        self.tasks = DetachedTasks()

    async def run(self) -> None:
        if not self.remaining:
            return
        self.tasks.start_soon(self.watchdog, name="shutdown watchdog")
        for name, n in self.waiting.items():
            if n == 0:
                self.tasks.start_soon(self.stop_chain, name, name=f"stop {name}")
        try:
            await self.done.wait()
        finally:
            if not self.done.is_set():  # forced: cancel the stops in flight and the watchdog
                self.remaining = 0
                for *_, scope in list(self.inflight.values()):
                    scope.cancel()
                self.wake.set()

    async def stop_chain(self, name: str | None) -> None:
        while name is not None:
            await self.stop_one(name)
            name = self.release(name)

    def release(self, name: str) -> str | None:
        """Mark ``name`` done; spawn all its newly ready dependencies but one, returned."""
        if name in self.released:
            return None
        self.released.add(name)
        self.remaining -= 1
        if not self.remaining:
            self.wake.set()
            self.done.set()
        ready = []
        for dep in self.lc.graph.deps[name]:
            if dep in self.waiting:
                self.waiting[dep] -= 1
                if self.waiting[dep] == 0:
                    ready.append(dep)
        for dep in ready[1:]:
            self.tasks.start_soon(self.stop_chain, dep, name=f"stop {dep}")
        return ready[0] if ready else None

    async def stop_one(self, name: str) -> None:
        """Cancel ``run()``, then ``stop()``, both within min(stop bound, what is left)."""
        lc, rec = self.lc, self.lc.records[name]
        lc.emit(ServiceStopping(name))
        set_service_state(rec.service, ServiceState.STOPPING)
        began = anyio.current_time()
        bound = rec.stop_bound
        deadline = _deadline(began, bound.seconds)
        if self.budget_end < deadline:
            left = max(0.0, self.budget_end - began)
            bound = Bound(left, f"what was left of {lc.shutdown_timeout}")
            deadline = self.budget_end
        scope = anyio.CancelScope(deadline=deadline)
        self.inflight[name] = (began, deadline, bound, scope)
        if deadline + _GRACE < self.watch_until:
            self.wake.set()
        outcome, error = Outcome.OK, None
        try:
            if rec.run_done is not None:
                # run() first: cancelled, and waited for within the bound ...
                with anyio.CancelScope(deadline=deadline) as run_scope:
                    if rec.run_scope is not None:
                        rec.run_scope.cancel()
                    await rec.run_done.wait()
                if run_scope.cancelled_caught:
                    outcome = Outcome.TIMED_OUT
            # ... then stop(), always called, with what is left of the bound
            with scope:
                await rec.service.stop()
            if scope.cancelled_caught:
                outcome = Outcome.TIMED_OUT
        except anyio.get_cancelled_exc_class():
            lc._record_stop(rec, began, bound, Outcome.CANCELLED)  # forced by a second signal
            raise
        except Exception as exc:
            outcome, error = Outcome.FAILED, exc
        finally:
            del self.inflight[name]
        lc._record_stop(rec, began, bound, outcome, error)

    async def watchdog(self) -> None:
        """Release the dependencies of stops that ignore cancellation past their deadline."""
        while self.remaining:
            self.wake = anyio.Event()
            self.watch_until = min((d for _, d, _, _ in self.inflight.values()), default=math.inf)
            self.watch_until += _GRACE
            with anyio.CancelScope(deadline=self.watch_until):
                await self.wake.wait()
            now = anyio.current_time()
            for name, (began, deadline, bound, _) in list(self.inflight.items()):
                if deadline + _GRACE <= now and name not in self.released:
                    rec = self.lc.records[name]
                    self.lc._record_stop(rec, began, bound, Outcome.TIMED_OUT)
                    nxt = self.release(name)
                    if nxt is not None:
                        self.tasks.start_soon(self.stop_chain, nxt, name=f"stop {nxt}")
