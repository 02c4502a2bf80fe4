"""The lifecycle engine: start along the dependency graph, stop in exact reverse, every step bounded.

Backend-neutral (anyio): runs on asyncio and trio.

Start: a service starts as soon as all its own dependencies have started (not layer by layer), each
``start()`` bounded by its start bound, the whole startup by ``startup_timeout``. A start that fails,
times out or is cancelled cancels the starts in flight; services that never began are never started;
every service whose start began is then stopped in reverse (the rollback).

Stop: `ShutdownStarted` first (readiness turns not-ready), then the shutdown delay, then the
reverse stop (`framework._engine.shutdown`): a service stops as soon as all its dependents have stopped,
concurrently where independent. Each stop gets ``min(its stop bound, what is left of
shutdown_timeout)``; the delay counts against it. A stop that fails or times out is recorded and
the shutdown goes on; a stop that ignores cancellation is left running once its bound has passed,
and its dependencies are stopped anyway. `force` cuts the delay and the stops short.

The engine owns the ``run()`` bodies too (`framework._engine.run_bodies`: a crash, or a restart as its
policy allows): each is cancelled (and waited for) before its service's ``stop()``, and any left
at the end of a stop or rollback is cancelled.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine, Iterator, Mapping
from typing import Any, Protocol

import anyio
from anyio.abc import TaskGroup

from framework._engine.cancellation import is_stray, stray
from framework._engine.errors import FrameworkError, ServiceError, ShutdownError, StartupError
from framework._engine.events import (
    Bound,
    Event,
    EventBus,
    EventHandler,
    Outcome,
    Phase,
    RollingBack,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStarting,
    ShutdownFinished,
    ShutdownStarted,
    SpawnedTaskFailed,
    StartupFinished,
)
from framework._engine.graph import DependencyGraph
from framework._engine.records import ServiceRecord, backend_clock, deadline
from framework._engine.restart import NEVER, RestartPolicy
from framework._engine.run_bodies import CrashHandler, RunBodies
from framework._engine.service import (
    Service,
    ServiceState,
    ask_to_stop,
    report_spawned_failures,
    set_service_state,
)
from framework._engine.shutdown import ReverseStop
from framework._engine.walk import Timer, Walk

__all__ = ("Lifecycle", "LifecycleState", "ServiceRecord")


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


class Lifecycle:
    """Starts and stops a set of services along their dependency graph.

    ``start()`` raises `StartupError` after rolling back; ``stop()`` raises `ShutdownError` when a
    stop failed or timed out (after stopping every other service). ``stop()`` is idempotent.
    Events go out on ``bus`` (one is made when none is given); ``on_event`` subscribes to it.
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
        bus: EventBus | None = None,
        restart: Mapping[str, RestartPolicy] | None = None,
        drain: Mapping[str, float] | None = None,
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
                restart=(restart or {}).get(name, NEVER),
                drain_seconds=(drain or {}).get(name),
            )
            for name in graph.order
        }
        self.startup_timeout = startup_timeout
        self.shutdown_timeout = shutdown_timeout
        self.state = LifecycleState.IDLE
        self.start_errors: list[ServiceError] = []
        self.stop_errors: list[ServiceError] = []
        self.bus = bus if bus is not None else EventBus()
        if on_event is not None:
            self.bus.subscribe(on_event)
        self._bodies = RunBodies(self.emit, lambda: self.state in _RESTARTABLE, on_crash)
        self._spawned_failed = self._spawned_task_failed  # one report every service holds
        self._start_scope: anyio.CancelScope | None = None
        self._stop_scope: anyio.CancelScope | None = None
        self._stop_done: anyio.Event | None = None
        self.abort_reason: str | None = None
        """Why the startup was aborted from outside (a signal: also set from its thread)."""
        self.forced = False
        """Whether `force` was called: the shutdown was cut short."""
        self.clock: Callable[[], float] = anyio.current_time  # the backend's, once it runs

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        self.bus.subscribe(handler)

    def emit(self, event: Event) -> None:
        self.bus.emit(event)

    def _spawned_task_failed(self, service: str, task: str, error: BaseException) -> None:
        """A task that ``service`` spawned raised: logged, naming the service and the task."""
        self.emit(SpawnedTaskFailed(service, task, error))

    @property
    def crashed(self) -> bool:
        """Whether a ``run()`` body raised."""
        return any(rec.crashed for rec in self)

    # -- start ----------------------------------------------------------------------------------

    def abort_start(self, reason: str) -> None:
        """Abort a startup in progress (a signal arrived): in-flight starts are cancelled."""
        if self.state is LifecycleState.STARTING and self._start_scope is not None:
            self.abort_reason = reason
            self._start_scope.cancel()

    async def start(self, run_group: Spawner | None = None) -> None:
        """Start every service in dependency order; ``run()`` bodies go into ``run_group``."""
        if self.state is not LifecycleState.IDLE:
            raise FrameworkError(f"cannot start: the lifecycle is {self.state.value}")
        if run_group is None and any(callable(getattr(r.service, "run", None)) for r in self):
            raise FrameworkError("services define run(): pass a task group to start()")
        self.state = LifecycleState.STARTING
        self.clock = clock = backend_clock()
        began = clock()
        scope = anyio.CancelScope(deadline=deadline(began, self.startup_timeout.seconds))
        failed = await self._start_all(scope, run_group)
        ok = not (failed or scope.cancel_called)
        if scope.cancelled_caught and not failed and self.abort_reason is None:
            self._startup_timed_out()
        self.emit(StartupFinished(clock() - began, ok))
        if ok:
            self.state = LifecycleState.STARTED
            return
        first = str(self.start_errors[0]) if self.start_errors else "startup failed"
        reason = self.abort_reason or first
        await self._roll_back(reason)
        raise StartupError([*self.start_errors, *self.stop_errors], reason)

    async def _start_all(self, scope: anyio.CancelScope, run_group: Spawner | None) -> bool:
        """Walk the graph from its roots within ``scope``; whether a start failed."""
        missing = {name: len(deps) for name, deps in self.graph.deps.items()}
        failed = False
        tg: TaskGroup

        async def step(rec: ServiceRecord, timer: Timer) -> list[ServiceRecord]:
            nonlocal failed
            if self.abort_reason is not None:  # noted by a signal's thread: the loop had no turn
                scope.cancel()
            if tg.cancel_scope.cancel_called or scope.cancel_called:
                return []  # startup already failed or was aborted: this one never begins
            if not await self._start_service(rec, run_group, timer):
                failed = True
                tg.cancel_scope.cancel()
                return []
            ready = []
            for dependent in self.graph.dependents[rec.name]:
                missing[dependent] -= 1
                if missing[dependent] == 0:
                    ready.append(self.records[dependent])
            return ready

        walk = Walk(step, lambda take, rec: tg.start_soon(take, rec, name="start"))
        walk.ready.extend(self.records[name] for name, n in missing.items() if n == 0)
        self._start_scope = scope
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    await walk.run()
        except anyio.get_cancelled_exc_class():
            # cancelled from outside: roll back what began, shielded, then let it propagate
            with anyio.CancelScope(shield=True):
                await self._roll_back("startup was cancelled")
            raise
        finally:
            self._start_scope = None
        return failed

    def _startup_timed_out(self) -> None:
        """The startup budget ran out: the starts in flight timed out (not merely cancelled)."""
        for rec in self:
            if rec.start_outcome is Outcome.CANCELLED:
                rec.start_outcome = Outcome.TIMED_OUT
                error = ServiceError(
                    rec.name, Phase.START, Outcome.TIMED_OUT, bound=self.startup_timeout
                )
                rec.errors = (*rec.errors[:-1], error)
                self.start_errors.append(error)
        if not self.start_errors:
            self.start_errors.append(
                ServiceError("*", Phase.START, Outcome.TIMED_OUT, bound=self.startup_timeout)
            )

    async def _start_service(
        self, rec: ServiceRecord, run_group: Spawner | None, timer: Timer
    ) -> bool:
        name, service, bound = rec.name, rec.service, rec.start_bound
        self.bus.emit_new(ServiceStarting, name)
        set_service_state(service, ServiceState.STARTING)
        report_spawned_failures(service, name, self._spawned_failed)
        rec.start_began = began = self.clock()
        error: BaseException | None = None
        outcome = Outcome.OK
        try:
            await timer.run(service.start, deadline(began, bound.seconds))
        except anyio.get_cancelled_exc_class():
            if is_stray():  # start() re-raised a cancellation of its own: a failed start
                outcome, error = Outcome.FAILED, stray("start()")
            elif not timer.expired:  # cancelled from outside, not by its bound
                self._record_start(rec, Outcome.CANCELLED, None)
                raise
            else:
                outcome = Outcome.TIMED_OUT
        except Exception as exc:
            outcome, error = Outcome.FAILED, exc
        self._record_start(rec, outcome, error)
        if outcome is not Outcome.OK:
            return False
        run = getattr(service, "run", None)
        if callable(run) and run_group is not None:
            rec.run_done = anyio.Event()
            run_group.start_soon(self._bodies.run, rec, run, name=f"{name}.run")
        return True

    def _record_start(
        self, rec: ServiceRecord, outcome: Outcome, error: BaseException | None
    ) -> None:
        assert rec.start_began is not None
        rec.start_duration = duration = self.clock() - rec.start_began
        rec.start_outcome = outcome
        if outcome is Outcome.OK:
            set_service_state(rec.service, ServiceState.STARTED)
            self.bus.emit_new(ServiceStarted, rec.name, duration)
            return
        set_service_state(rec.service, ServiceState.FAILED)
        err = ServiceError(rec.name, Phase.START, outcome, bound=rec.start_bound, cause=error)
        rec.errors += (err,)
        if outcome is not Outcome.CANCELLED:
            self.start_errors.append(err)
        self.emit(ServiceStartFailed(rec.name, duration, outcome, rec.start_bound, error))

    async def _roll_back(self, reason: str) -> None:
        begun = tuple(rec.name for rec in self if rec.began)
        first = self.start_errors[0] if self.start_errors else None
        raised = first is not None and first.outcome is Outcome.FAILED and reason == str(first)
        self.emit(RollingBack(reason, begun, first.service if raised and first else None))
        self._begin_stopping()
        await self._stop_all(deadline(self.clock(), self.shutdown_timeout.seconds))

    # -- stop -----------------------------------------------------------------------------------

    def force(self, reason: str = "forced") -> None:
        """Cut what is left short (a second signal): a startup is aborted, the delay skipped, the
        stops in flight cancelled (recorded as cancelled)."""
        self.forced = True
        self.abort_start(reason)
        if self._stop_scope is not None:
            self._stop_scope.cancel()

    async def stop(self, reason: str = "stop requested", *, delay: float = 0.0) -> None:
        """Announce the shutdown, serve ``delay`` more seconds, stop in reverse order. Idempotent.

        The delay counts against ``shutdown_timeout``: the stops get what is left of it.
        """
        if self.state is LifecycleState.STARTING:
            raise FrameworkError("cannot stop while starting: abort the startup instead")
        if self.state is LifecycleState.STOPPING:
            assert self._stop_done is not None
            await self._stop_done.wait()
            return
        if self.state is not LifecycleState.STARTED:  # idle (never started) or stopped already
            self.state = LifecycleState.STOPPED
            return
        began = self.clock()
        self._begin_stopping()
        delay = 0.0 if self.forced else delay
        self.emit(ShutdownStarted(reason, delay))  # the first moment: readiness is 503 now
        for rec in self:  # and every service's self.stopping is set
            ask_to_stop(rec.service)
        try:
            with anyio.CancelScope() as self._stop_scope:
                if delay > 0:
                    await anyio.sleep(delay)
                await self._stop_all(deadline(began, self.shutdown_timeout.seconds))
        finally:
            assert self._stop_done is not None
            if not self._stop_done.is_set():  # forced during the delay: no stop began
                self._end_stopping()
        if self.stop_errors:
            raise ShutdownError(self.stop_errors)

    def _begin_stopping(self) -> None:
        self.state = LifecycleState.STOPPING
        self._stop_done = anyio.Event()

    async def _stop_all(self, budget_end: float) -> None:
        began = self.clock()
        stop = ReverseStop(
            self.graph,
            self.records,
            self.bus,
            self.stop_errors,
            budget=self.shutdown_timeout,
            budget_end=budget_end,
            clock=self.clock,
        )
        try:
            await stop.run()
        finally:
            self._end_stopping()
            self.emit(ShutdownFinished(self.clock() - began, not self.stop_errors))

    def _end_stopping(self) -> None:
        for rec in self:  # run() bodies whose stop never came (forced)
            if rec.run_scope is not None:
                rec.run_scope.cancel()
        self.state = LifecycleState.STOPPED
        assert self._stop_done is not None
        self._stop_done.set()

    def __iter__(self) -> Iterator[ServiceRecord]:
        return iter(self.records.values())


_RESTARTABLE = (LifecycleState.STARTING, LifecycleState.STARTED)
