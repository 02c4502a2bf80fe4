"""How readiness follows the lifecycle: a consumer of the engine's events.

``starting`` until `StartupFinished` (ok) makes it ``ready``; `ShutdownStarted` (the first moment
of shutdown, before the delay) makes it ``shutting down`` and sets its shutdown notice;
`ShutdownFinished` makes it ``stopped``.

While ``ready``, a service keeps the application from being ready (``/readyz`` 503) while it is
restarting (from `ServiceRestarting` to `ServiceRestarted`) or its latest health check failed
(`ServiceHealthChanged`); the reason shown is the restart's while both hold.
"""

from __future__ import annotations

from framework._engine.events import (
    Event,
    EventHandler,
    ServiceHealthChanged,
    ServiceRestarted,
    ServiceRestarting,
    ShutdownFinished,
    ShutdownStarted,
    StartupFinished,
    takes,
)
from framework._engine.readiness import RESTARTING, AppState, Readiness

__all__ = ("follow_lifecycle",)


def follow_lifecycle(readiness: Readiness) -> EventHandler:
    """An event handler that moves ``readiness`` along the lifecycle; subscribe it first."""
    restarting: dict[str, str] = {}
    unhealthy: dict[str, str] = {}

    def update(service: str) -> None:
        reason = restarting.get(service) or unhealthy.get(service)
        current = readiness.unhealthy.get(service)
        if reason is None:
            readiness.mark_healthy(service)
        elif current is None or current.reason != reason:
            readiness.mark_healthy(service)  # a new reason: since now
            readiness.mark_unhealthy(service, reason)

    @takes(
        StartupFinished,
        ShutdownStarted,
        ShutdownFinished,
        ServiceRestarting,
        ServiceRestarted,
        ServiceHealthChanged,
    )
    def on_event(event: Event) -> None:
        match event:
            case StartupFinished(ok=True):
                readiness.set_state(AppState.READY)
            case ShutdownStarted():
                readiness.set_state(AppState.SHUTTING_DOWN)
            case ShutdownFinished():
                readiness.set_state(AppState.STOPPED)
            case ServiceRestarting(service=name):
                restarting[name] = RESTARTING
                update(name)
            case ServiceRestarted(service=name):
                restarting.pop(name, None)
                update(name)
            case ServiceHealthChanged(service=name, healthy=healthy, reason=why):
                if healthy:
                    unhealthy.pop(name, None)
                else:
                    unhealthy[name] = f"unhealthy: {why}"
                update(name)

    return on_event
