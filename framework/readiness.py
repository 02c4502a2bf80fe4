"""Readiness: the application's view of whether it should receive traffic."""

from __future__ import annotations

import enum

__all__ = ("AppState", "Readiness")


class AppState(enum.StrEnum):
    STARTING = "starting"
    READY = "ready"
    SHUTTING_DOWN = "shutting down"
    STOPPED = "stopped"


class Readiness:
    """``starting -> ready -> shutting down -> stopped``; ready only in ``ready``.

    Owned by the application; the HTTP service answers ``/readyz`` from it. It flips to
    ``shutting down`` at the first moment of shutdown, before the shutdown delay.
    """

    def __init__(self) -> None:
        self.state = AppState.STARTING

    @property
    def ready(self) -> bool:
        return self.state is AppState.READY
