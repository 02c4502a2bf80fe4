"""Typed lifecycle events.

The engine emits these small frozen records; logging, the timeline report, metrics and tests consume
them. Durations are in seconds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

__all__ = (
    "Bound",
    "Event",
    "EventHandler",
    "Outcome",
    "Phase",
    "RollingBack",
    "ServiceCrashed",
    "ServiceStartFailed",
    "ServiceStarted",
    "ServiceStarting",
    "ServiceStopFailed",
    "ServiceStopped",
    "ServiceStopping",
    "ShutdownFinished",
    "ShutdownStarted",
    "StartupFinished",
)


class Phase(enum.StrEnum):
    START = "start"
    STOP = "stop"
    RUN = "run"


class Outcome(enum.StrEnum):
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
    service: str


@dataclass(frozen=True)
class ServiceStarted:
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
    service: str


@dataclass(frozen=True)
class ServiceStopped:
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
class StartupFinished:
    duration: float
    ok: bool


@dataclass(frozen=True)
class RollingBack:
    """Startup failed or was aborted; the services that began starting are stopped in reverse."""

    reason: str
    services: tuple[str, ...]


@dataclass(frozen=True)
class ShutdownStarted:
    """Shutdown began: readiness is not-ready from now on; the shutdown delay, then the stops."""

    reason: str


@dataclass(frozen=True)
class ShutdownFinished:
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
    | StartupFinished
    | RollingBack
    | ShutdownStarted
    | ShutdownFinished
)
EventHandler = Callable[[Event], None]
