"""Readiness: the application's view of whether it should receive traffic.

The runner owns one `Readiness` per application and moves it along the lifecycle events; the HTTP
service answers ``/readyz`` from it and reads its `ShutdownNotice`. It knows nothing of the runner.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio

__all__ = ("AppState", "Readiness", "ShutdownNotice", "Unhealthy")


class AppState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    SHUTTING_DOWN = "shutting down"
    STOPPED = "stopped"


class ShutdownNotice:
    """Set once, at the first moment of shutdown; ``is_set()`` and ``await wait()``.

    Passed to the ASGI app as ``scope["extensions"]["framework.shutdown"]`` so that streams and
    websocket handlers can finish on their own. Set it from the event loop's thread.
    """

    def __init__(self) -> None:
        self._set = False
        self._waiters: list[anyio.Event] = []
        self._callbacks: list[Callable[[], object]] = []

    def is_set(self) -> bool:
        return self._set

    async def wait(self) -> None:
        """Return once shutdown has begun (at once if it already has)."""
        if self._set:
            return
        event = anyio.Event()
        self._waiters.append(event)
        await event.wait()

    def add_callback(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` when the notice is set, in the event loop's thread (now if it is)."""
        if self._set:
            callback()
        else:
            self._callbacks.append(callback)

    def set(self) -> None:
        if self._set:
            return
        self._set = True
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()


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

    def details(self) -> dict[str, Any]:
        """Which services keep the application from being ready, and since when."""
        return {
            name: {"reason": u.reason, "since": round(u.since, 3)}
            for name, u in sorted(self.unhealthy.items())
        }
