"""Where the built-in services meet telemetry: one hook each, a no-op while none is running.

A `TelemetryService` registers itself here when it starts and removes itself when it stops; the
services it instruments depend on it (`framework._runtime.discovery` adds the edges), so they start
after it and stop before it. ``HttpService`` passes its ASGI app through `instrument_asgi` and
``DatabaseService`` its engine through `instrument_engine`: with no telemetry running they get
back what they gave, and nothing of OpenTelemetry is imported.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ("Instrumenting", "instrument_asgi", "instrument_engine", "register", "unregister")


class Instrumenting(Protocol):
    """What a running telemetry service offers the services it instruments."""

    def wrap_asgi(self, app: Any) -> Any:
        """``app`` with a server span around every request."""

    def trace_engine(self, engine: Any) -> None:
        """Have ``engine`` (a synchronous SQLAlchemy `Engine`) record a span per statement."""


_active: list[Instrumenting] = []


def register(telemetry: Instrumenting) -> None:
    """``telemetry`` instruments the services that start from now on."""
    _active.append(telemetry)


def unregister(telemetry: Instrumenting) -> None:
    """``telemetry`` stopped: services that start later are not instrumented by it."""
    if telemetry in _active:
        _active.remove(telemetry)


def instrument_asgi(app: Any) -> Any:
    """``app`` as the running telemetry serves it (itself when none runs)."""
    for telemetry in _active:
        app = telemetry.wrap_asgi(app)
    return app


def instrument_engine(engine: Any) -> None:
    """Let the running telemetry trace the statements of ``engine`` (nothing when none runs)."""
    for telemetry in _active:
        telemetry.trace_engine(engine)
