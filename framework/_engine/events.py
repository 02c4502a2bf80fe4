"""Typed lifecycle events.

The engine emits these small frozen records; logging, the timeline report, metrics and tests consume
them. Durations are in seconds.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = (
    "Bound",
    "Event",
    "EventBus",
    "EventHandler",
    "Outcome",
    "Phase",
    "RollingBack",
    "ServiceCrashed",
    "ServiceHealthChanged",
    "ServiceRestarted",
    "ServiceRestarting",
    "ServiceStartFailed",
    "ServiceStarted",
    "ServiceStarting",
    "ServiceStopFailed",
    "ServiceStopped",
    "ServiceStopping",
    "ShutdownFinished",
    "ShutdownStarted",
    "SpawnedTaskFailed",
    "StartupFinished",
    "takes",
)


class Phase(enum.StrEnum):
    """Which call of a service an event or an error is about."""

    START = "start"
    STOP = "stop"
    RUN = "run"


class Outcome(enum.StrEnum):
    """How a start, a stop or a run ended."""

    OK = "ok"
    FAILED = "failed"
    TIMED_OUT = "timed out"
    CANCELLED = "cancelled"
    NEVER_STARTED = "never started"


@dataclass(frozen=True)
class Bound:
    """A time bound and the setting it came from, e.g. ``3.0 s (services.db.stop_timeout)``."""

    seconds: float | None
    source: str

    def __str__(self) -> str:
        if self.seconds is None:
            return f"no bound ({self.source})"
        return f"{self.seconds:g} s ({self.source})"


@dataclass(frozen=True)
class ServiceStarting:
    """A service's ``start()`` is about to be called."""

    service: str


@dataclass(frozen=True)
class ServiceStarted:
    """A service's ``start()`` returned after ``duration`` seconds: it is ready."""

    service: str
    duration: float


@dataclass(frozen=True)
class ServiceStartFailed:
    """A start raised (FAILED), exceeded its bound (TIMED_OUT), or was cancelled (CANCELLED)."""

    service: str
    duration: float
    outcome: Outcome
    bound: Bound
    error: BaseException | None = None


@dataclass(frozen=True)
class ServiceStopping:
    """A service is about to stop: its ``run()`` ends first, then ``stop()`` is called."""

    service: str


@dataclass(frozen=True)
class ServiceStopped:
    """A service's ``stop()`` returned after ``duration`` seconds."""

    service: str
    duration: float


@dataclass(frozen=True)
class ServiceStopFailed:
    """A stop raised (FAILED), exceeded its bound (TIMED_OUT), or was cancelled (CANCELLED)."""

    service: str
    duration: float
    outcome: Outcome
    bound: Bound
    error: BaseException | None = None


@dataclass(frozen=True)
class ServiceCrashed:
    """A service's ``run()`` body raised; the application shuts down."""

    service: str
    error: BaseException


@dataclass(frozen=True)
class ServiceRestarting:
    """A service's ``run()`` raised (or its restart's ``start()`` failed) and its restart policy
    allows another go: it is stopped, and started again after ``backoff`` seconds.

    ``attempt`` counts the restarts of this service since the application started (1 for the first).
    """

    service: str
    attempt: int
    backoff: float
    error: BaseException


@dataclass(frozen=True)
class ServiceRestarted:
    """A restarted service's ``start()`` returned: its ``run()`` is resumed."""

    service: str
    attempt: int
    duration: float


@dataclass(frozen=True)
class ServiceHealthChanged:
    """A service's ``health()`` result changed: ``healthy`` now, ``reason`` when not."""

    service: str
    healthy: bool
    reason: str = ""


@dataclass(frozen=True)
class SpawnedTaskFailed:
    """A task the service started with ``self.spawn()`` raised; the application goes on."""

    service: str
    task: str
    error: BaseException


@dataclass(frozen=True)
class StartupFinished:
    """The startup ended after ``duration`` seconds: every service started (``ok``), or not."""

    duration: float
    ok: bool


@dataclass(frozen=True)
class RollingBack:
    """Startup failed or was aborted; the services that began starting are stopped in reverse.

    ``raised`` names the service whose ``start()`` raised when that is the reason (its error is
    reported with the failed start already)."""

    reason: str
    services: tuple[str, ...]
    raised: str | None = None


@dataclass(frozen=True)
class ShutdownStarted:
    """Shutdown began: readiness is not-ready from now on; the shutdown delay, then the stops.

    ``delay`` is the shutdown delay about to be served (0 when there is none, or when forced).
    """

    reason: str
    delay: float = 0.0


@dataclass(frozen=True)
class ShutdownFinished:
    """The shutdown ended after ``duration`` seconds: every stop succeeded (``ok``), or not."""

    duration: float
    ok: bool


Event = (
    ServiceStarting
    | ServiceStarted
    | ServiceStartFailed
    | ServiceStopping
    | ServiceStopped
    | ServiceStopFailed
    | ServiceCrashed
    | ServiceRestarting
    | ServiceRestarted
    | ServiceHealthChanged
    | SpawnedTaskFailed
    | StartupFinished
    | RollingBack
    | ShutdownStarted
    | ShutdownFinished
)
EventHandler = Callable[[Event], None]
H = TypeVar("H", bound=Callable[..., None])
Takes = Callable[[type], bool] | tuple[type, ...]


def takes(*kinds: type) -> Callable[[H], H]:
    """Mark an event handler as acting on events of ``kinds`` only (it ignores the others): when
    no handler takes a per-service event, the engine does not build it (`EventBus.wanted`)."""

    def mark(handler: H) -> H:
        handler.takes = kinds  # type: ignore[attr-defined]
        return handler

    return mark


class EventBus:
    """The one place lifecycle events go out: consumers `subscribe`, the engine emits.

    Handlers are called in the order they subscribed, synchronously; a handler that raises is
    reported on stderr and the others still get the event (a broken consumer must not break the
    lifecycle). A handler marked with `takes` (a tuple of kinds, or a test of a kind asked at each
    event) tells the bus which events it acts on; any other handler acts on every event.
    """

    def __init__(self, *handlers: EventHandler) -> None:
        self._handlers: list[EventHandler] = list(handlers)
        self._wanted: dict[type, bool | Callable[[type], bool]] = {}

    def subscribe(self, handler: EventHandler) -> None:
        """Receive every event from now on (a sync callable; keep it quick)."""
        self._handlers.append(handler)
        self._wanted.clear()

    def wanted(self, kind: type) -> bool:
        """Whether a handler acts on events of ``kind``."""
        found = self._wanted.get(kind)
        if found is None:
            found = self._wanted[kind] = self._takers(kind)
        if found is True or found is False:
            return found
        return found(kind)  # asked at each event: a log level that takes it may come and go

    def _takers(self, kind: type) -> bool | Callable[[type], bool]:
        """True when a handler always takes ``kind``; else the test to ask at each event."""
        tests = []
        for handler in self._handlers:
            taken: Takes | None = getattr(handler, "takes", None)
            if taken is None or (isinstance(taken, tuple) and issubclass(kind, taken)):
                return True
            if not isinstance(taken, tuple):
                tests.append(taken)
        if len(tests) > 1:
            return lambda kind: any(test(kind) for test in tests)
        return tests[0] if tests else False

    def emit(self, event: Event) -> None:
        for handler in self._handlers:
            try:
                handler(event)
            except Exception as exc:
                print(f"framework: event handler {handler!r} failed: {exc!r}", file=sys.stderr)

    def emit_new(self, kind: Callable[..., Event], *args: Any) -> None:
        """``emit(kind(*args))``, the event built only when a handler acts on its kind."""
        if self.wanted(kind):  # type: ignore[arg-type]
            self.emit(kind(*args))
