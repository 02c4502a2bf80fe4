"""`ServiceContext`: what a built-in service may know of the application it runs in.

The runner hands one to each service that asks for it (a ``_framework_attach(context)`` method)
before any service starts. Services read the application through it and never import the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from framework._config.settings import Settings
from framework._engine.readiness import Readiness
from framework._engine.service import ServiceState

__all__ = ("ServiceContext", "ServiceView")


@dataclass(frozen=True)
class ServiceView:
    """One service as others may see it: state and timings (seconds), never the object."""

    state: ServiceState
    start_seconds: float | None = None
    stop_seconds: float | None = None
    restarts: int = 0


@dataclass(frozen=True)
class ServiceContext:
    name: str
    """The service's name: its provider attribute in the container."""
    readiness: Readiness
    """The application's readiness (``/readyz``), with its shutdown notice."""
    settings: Settings
    """The application's loaded settings."""
    services: Callable[[], Mapping[str, ServiceView]]
    """Every service of the application, in start order, read when called."""
    app_name: str = ""
    """The application's class name (the default name it reports itself under)."""
