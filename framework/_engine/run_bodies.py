"""A service's ``run()`` body, owned by the engine: awaited, restarted as its policy allows.

`RunBodies.run` is what the engine (`framework._engine.lifecycle`) puts in its run group for each started
service that defines ``run()``. The body runs in a cancel scope kept on the service's record, so
the shutdown cancels it (and waits for it) before the service's ``stop()``.

A body that raises is a crash, unless its restart policy (`framework._engine.restart`) allows a restart:
stop, backoff, start, and ``run()`` again, all inside the body's task (so the shutdown cancels a
restart like a body). A restart's stop that fails or overruns its bound ends the restarts.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from framework._engine.cancellation import is_stray, stray
from framework._engine.errors import ServiceError, error_text
from framework._engine.events import (
    Bound,
    Event,
    Outcome,
    Phase,
    ServiceCrashed,
    ServiceRestarted,
    ServiceRestarting,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStarting,
    ServiceStopFailed,
    ServiceStopped,
    ServiceStopping,
)
from framework._engine.records import ServiceRecord, deadline
from framework._engine.restart import NEVER, Restart
from framework._engine.service import ServiceState, set_service_state

__all__ = ("CrashHandler", "RunBodies")

CrashHandler = Callable[[str, BaseException], None]


class RunBodies:
    """Runs and restarts ``run()`` bodies; ``restartable()`` says whether the engine still may
    (not while it stops), ``emit`` reports, ``on_crash`` hears of a crash past the policy."""

    def __init__(
        self,
        emit: Callable[[Event], None],
        restartable: Callable[[], bool],
        on_crash: CrashHandler | None = None,
    ) -> None:
        self.emit = emit
        self.restartable = restartable
        self.on_crash = on_crash

    async def run(self, rec: ServiceRecord, run: Callable[[], object]) -> None:
        """The body's task: ``run()`` in the record's cancel scope, restarted by its policy."""
        assert rec.run_done is not None
        try:
            with anyio.CancelScope() as rec.run_scope:
                await self._supervise(rec, run)
        finally:
            rec.run_done.set()

    async def _supervise(self, rec: ServiceRecord, run: Callable[[], object]) -> None:
        """``run()``, restarted while its restart policy allows; a crash past that is reported."""
        error = await _run_once(run)
        while error is not None:
            now = anyio.current_time()
            backoff = rec.restart.backoff([r.at for r in rec.restarts], now)
            if backoff is None or not self.restartable():
                self._crashed(rec, error)
                return
            rec.restarts += (Restart(now, error_text(error), backoff),)
            self.emit(ServiceRestarting(rec.name, len(rec.restarts), backoff, error))
            error = await self._restart(rec, backoff)
            if error is None:
                error = await _run_once(run)

    def _crashed(self, rec: ServiceRecord, error: Exception) -> None:
        rec.errors += (ServiceError(rec.name, Phase.RUN, Outcome.FAILED, cause=error),)
        self.emit(ServiceCrashed(rec.name, error))
        if self.on_crash is not None:
            self.on_crash(rec.name, error)

    async def _restart(self, rec: ServiceRecord, backoff: float) -> Exception | None:
        """Stop the service, wait ``backoff`` seconds, start it: None, or why it did not start.

        A stop that fails or overruns its bound ends the restarts (that error is returned and the
        restart budget is not asked again). Cancelled (the shutdown): the shutdown's stop follows.
        """
        name, service = rec.name, rec.service
        self.emit(ServiceStopping(name))
        set_service_state(service, ServiceState.STOPPING)
        outcome, error, took = await _bounded(service.stop, rec.stop_bound, shield=True)
        if outcome is not Outcome.OK:
            set_service_state(service, ServiceState.FAILED)
            self.emit(ServiceStopFailed(name, took, outcome, rec.stop_bound, error))
            failed = ServiceError(name, Phase.STOP, outcome, bound=rec.stop_bound, cause=error)
            rec.errors += (failed,)
            rec.restart = NEVER  # a service that cannot stop cleanly is not started again
            return failed
        set_service_state(service, ServiceState.STOPPED)
        self.emit(ServiceStopped(name, took))
        rec.stopped_for_restart = True
        await anyio.sleep(backoff)
        rec.stopped_for_restart = False
        self.emit(ServiceStarting(name))
        set_service_state(service, ServiceState.STARTING)
        outcome, error, took = await _bounded(service.start, rec.start_bound)
        if outcome is not Outcome.OK:
            set_service_state(service, ServiceState.FAILED)
            self.emit(ServiceStartFailed(name, took, outcome, rec.start_bound, error))
            return error or ServiceError(name, Phase.START, outcome, bound=rec.start_bound)
        set_service_state(service, ServiceState.STARTED)
        self.emit(ServiceStarted(name, took))
        self.emit(ServiceRestarted(name, len(rec.restarts), took))
        return None


async def _run_once(run: Callable[[], object]) -> Exception | None:
    """Await ``run()``; what it raised, or None when it returned."""
    try:
        await run()  # type: ignore[misc]
    except anyio.get_cancelled_exc_class():
        if is_stray():  # a crash, not the shutdown: the restart policy applies
            return stray("run()")
        raise
    except Exception as exc:
        return exc
    return None


async def _bounded(
    call: Callable[[], Coroutine[Any, Any, None]], bound: Bound, *, shield: bool = False
) -> tuple[Outcome, Exception | None, float]:
    """Await ``call()`` within ``bound``: its outcome, what it raised, how long it took."""
    began = anyio.current_time()
    outcome = Outcome.OK
    error: Exception | None = None
    try:
        with anyio.CancelScope(deadline=deadline(began, bound.seconds), shield=shield) as scope:
            await call()
        if scope.cancelled_caught:
            outcome = Outcome.TIMED_OUT
    except anyio.get_cancelled_exc_class():
        if not is_stray():
            raise
        outcome, error = Outcome.FAILED, stray(f"{getattr(call, '__name__', 'call')}()")
    except Exception as exc:
        outcome, error = Outcome.FAILED, exc
    return outcome, error, anyio.current_time() - began
