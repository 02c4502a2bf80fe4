"""`ServiceRecord`: what happened to one service; the engine writes it, the timeline reads it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import sniffio

from framework._engine.errors import ServiceError
from framework._engine.events import Bound, Outcome, Phase
from framework._engine.restart import NEVER, Restart, RestartPolicy
from framework._engine.service import Service

__all__ = ("ServiceRecord", "backend_clock", "deadline")


@dataclass(eq=False, slots=True)
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
    errors: tuple[ServiceError, ...] = ()
    run_scope: anyio.CancelScope | None = field(default=None, repr=False)
    run_done: anyio.Event | None = field(default=None, repr=False)
    restart: RestartPolicy = NEVER
    restarts: tuple[Restart, ...] = ()
    """Each restart of its ``run()``, in order (the restart policy allowed it)."""
    stopped_for_restart: bool = False
    """Stopped by a restart and not started again yet: the shutdown need not stop it again."""
    drain_seconds: float | None = None
    """``services.<name>.drain_timeout``: how long its ``run()`` and spawned tasks may take to
    finish on their own at shutdown; None: its stop bound."""
    run_ended: str | None = None
    """How its ``run()`` ended at shutdown: ``warm`` (returned on its own) or ``cold`` (cancelled)."""
    tasks_cancelled: tuple[str, ...] = ()
    """The spawned tasks still running at the drain bound, cancelled."""

    @property
    def began(self) -> bool:
        return self.start_began is not None

    @property
    def crashed(self) -> bool:
        """Whether its ``run()`` body raised."""
        return any(e.phase is Phase.RUN for e in self.errors)


def deadline(now: float, seconds: float | None) -> float:
    """``now + seconds``, or never (``inf``) for no bound."""
    return math.inf if seconds is None else now + seconds


def backend_clock() -> Callable[[], float]:
    """`anyio.current_time` of the running backend, looked up once: anyio asks which backend runs
    at each call (four calls per service started and stopped); on asyncio, the loop's ``time``."""
    if sniffio.current_async_library() == "asyncio":
        return asyncio.get_running_loop().time
    return anyio.current_time
