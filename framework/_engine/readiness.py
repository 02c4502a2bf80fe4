"""Readiness: the application's view of whether it should receive traffic.

The runner owns one `Readiness` per application and moves it along the lifecycle events; the HTTP
service answers ``/readyz`` from it and reads its `ShutdownNotice`. It knows nothing of the runner.
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import Any

from framework._engine.notice import ShutdownNotice

__all__ = ("AppState", "Readiness", "ShutdownNotice", "Unhealthy")


class AppState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    SHUTTING_DOWN = "shutting down"
    STOPPED = "stopped"


RESTARTING = "restarting"
"""The reason of a service whose ``run()`` is being restarted (`Unhealthy.reason`)."""


@dataclass(frozen=True)
class Unhealthy:
    """Why a service is not ready although it started: a failed health check, or a restart."""

    reason: str
    since: float  # wall-clock time (time.time())


class Readiness:
    """``starting -> ready -> shutting down -> stopped``; ready only in ``ready`` and while no
    service is unhealthy or restarting.

    It flips to ``shutting down`` (and sets `shutdown`) at the first moment of shutdown, before the
    shutdown delay.
    """

    def __init__(self) -> None:
        self.state = AppState.STARTING
        self.shutdown = ShutdownNotice()
        self.unhealthy: dict[str, Unhealthy] = {}

    @property
    def ready(self) -> bool:
        return self.state is AppState.READY and not self.unhealthy

    def set_state(self, state: AppState) -> None:
        self.state = state
        if state in (AppState.SHUTTING_DOWN, AppState.STOPPED):
            self.shutdown.set()

    def mark_unhealthy(self, service: str, reason: str) -> None:
        if service not in self.unhealthy:
            self.unhealthy[service] = Unhealthy(reason, time.time())

    def mark_healthy(self, service: str) -> None:
        self.unhealthy.pop(service, None)

    def why(self) -> dict[str, Any]:
        """What ``/readyz`` says: ``{"status": ...}``, one of ``ready``, ``starting``, ``shutting
        down``, ``restarting`` (with ``restarting``: the services named) or ``unhealthy`` (with
        ``unhealthy``: each service named, and why)."""
        if self.state is AppState.STOPPED:
            return {"status": AppState.SHUTTING_DOWN.value}
        if self.state is not AppState.READY or not self.unhealthy:
            return {"status": self.state.value}
        restarting = {n: u.reason for n, u in self.unhealthy.items() if u.reason == RESTARTING}
        if restarting:
            return {"status": RESTARTING, RESTARTING: sorted(restarting)}
        failing = {
            name: u.reason.removeprefix("unhealthy: ") for name, u in sorted(self.unhealthy.items())
        }
        return {"status": "unhealthy", "unhealthy": failing}

    def details(self) -> dict[str, Any]:
        """Which services keep the application from being ready, and since when."""
        return {
            name: {"reason": u.reason, "since": round(u.since, 3)}
            for name, u in sorted(self.unhealthy.items())
        }
