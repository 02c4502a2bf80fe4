"""The `Service` base class and its lifecycle state."""

from __future__ import annotations

import enum
from typing import ClassVar

__all__ = ("Service", "ServiceState")

_STATE_ATTR = "_framework_state"


class ServiceState(enum.StrEnum):
    """Where a service is in its lifecycle.

    ``created -> starting -> started -> stopping -> stopped``; a start or stop that raises, times out or
    is cancelled ends in ``failed`` (a failed start is still stopped, and may end ``stopped``).
    """

    CREATED = "created"
    STARTING = "starting"
    STARTED = "started"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


class Service:
    """Base class of every service the framework starts and stops.

    Override ``start()`` to acquire resources and return once ready to serve, and ``stop()`` to
    release them. ``stop()`` is called for every service whose ``start()`` began, also when that start
    failed, timed out or was cancelled, so it must tolerate a half-done start.

    Optionally define ``async def run(self) -> None``: a long-running body started after ``start()``
    returns. At shutdown the framework cancels ``run()`` first, waits for it to finish (within the
    service's stop bound), then calls ``stop()``. If ``run()`` raises, the application shuts down
    in order and exits 1.

    Subclasses need not call ``super().__init__()``.
    """

    start_timeout: ClassVar[float | None] = None
    """Seconds ``start()`` may take; ``None`` uses ``services.<name>`` or ``lifecycle`` settings."""
    stop_timeout: ClassVar[float | None] = None
    """Seconds ``stop()`` may take; ``None`` uses ``services.<name>`` or ``lifecycle`` settings."""

    async def start(self) -> None:
        """Acquire resources; return once ready to serve. Default: nothing to do."""

    async def stop(self) -> None:
        """Release everything; must tolerate being called after a failed start."""

    @property
    def state(self) -> ServiceState:
        """The lifecycle state, kept by the framework."""
        return service_state(self)


def service_state(service: object) -> ServiceState:
    state = getattr(service, "__dict__", {}).get(_STATE_ATTR)
    return state if isinstance(state, ServiceState) else ServiceState.CREATED


def set_service_state(service: object, state: ServiceState) -> None:
    # a class with __slots__ and no __dict__ cannot hold it: its state is then not observable
    try:
        object.__setattr__(service, _STATE_ATTR, state)
    except (AttributeError, TypeError):
        pass
