"""How readiness follows the lifecycle: a consumer of the engine's events.

``starting`` until `StartupFinished` (ok) makes it ``ready``; `ShutdownStarted` (the first moment
of shutdown, before the delay) makes it ``shutting down`` and sets its shutdown notice;
`ShutdownFinished` makes it ``stopped``.
"""

from __future__ import annotations

from framework.events import Event, EventHandler, ShutdownFinished, ShutdownStarted, StartupFinished
from framework.readiness import AppState, Readiness

__all__ = ("follow_lifecycle",)


def follow_lifecycle(readiness: Readiness) -> EventHandler:
    """An event handler that moves ``readiness`` along the lifecycle; subscribe it first."""

    def on_event(event: Event) -> None:
        match event:
            case StartupFinished(ok=True):
                readiness.set_state(AppState.READY)
            case ShutdownStarted():
                readiness.set_state(AppState.SHUTTING_DOWN)
            case ShutdownFinished():
                readiness.set_state(AppState.STOPPED)

    return on_event
