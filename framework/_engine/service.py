"""The `Service` base class and its lifecycle state."""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ClassVar

from framework._engine.notice import ShutdownNotice
from framework._engine.spawned import SpawnedTasks

__all__ = ("Service", "ServiceState")

_STATE_ATTR = "_framework_state"
_STOPPING_ATTR = "_framework_stopping"
_STOP_ASKED_ATTR = "_framework_stop_asked"
_SPAWNED_ATTR = "_framework_spawned"
_SPAWN_REPORT_ATTR = "_framework_spawn_report"
_SPAWN_NAME_ATTR = "_framework_spawn_name"

ServiceTaskFailed = Callable[[str, str, BaseException], None]
"""Told of a spawned task that raised: the service's name, the task's name and the error."""


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
    returns. At the first moment of shutdown ``self.stopping`` is set. A ``run()`` that reads it
    gets ``services.<name>.drain_timeout`` seconds (default: the service's stop bound) from the
    moment its service's stop begins to return on its own (it ends warm); then it is cancelled
    (cold). A ``run()`` that never read ``self.stopping`` cannot know it should finish: it is
    cancelled at once. ``stop()`` is called after ``run()`` has ended, with its own stop bound.
    If ``run()`` raises, the application shuts down in order and exits 1.

    ``self.spawn(func, *args)`` starts a background task owned by the service: at shutdown its
    tasks are awaited (within the same drain bound, then cancelled) before its ``stop()``.

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

    @property
    def stopping(self) -> ShutdownNotice:
        """Set at the first moment of shutdown: ``is_set()`` and ``await wait()``. A ``run()``
        that reads it is given ``services.<name>.drain_timeout`` to finish its current unit of
        work and return, before it is cancelled.

        A subclass that assigns ``self.stopping`` itself (an attribute of its own, from before
        this notice existed) keeps its attribute: its ``run()`` is then cancelled at once."""
        own = getattr(self, "__dict__", {}).get("stopping")
        if own is not None:
            return own  # type: ignore[no-any-return]
        notice = stopping_notice(self)
        assert notice is not None
        return notice

    @stopping.setter
    def stopping(self, value: Any) -> None:
        self.__dict__["stopping"] = value

    def spawn(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None
    ) -> None:
        """Start ``func(*args)`` as a background task owned by this service (call it from the
        event loop). At shutdown it is awaited, within the service's drain bound, before
        ``stop()``; one still running then is cancelled. A task that raises is logged with its
        ``name`` (default: the function's) and does not stop the application."""
        tasks = spawned_tasks(self)
        assert tasks is not None
        tasks.spawn(func, *args, name=name)


def service_state(service: object) -> ServiceState:
    state = getattr(service, "__dict__", {}).get(_STATE_ATTR)
    return state if isinstance(state, ServiceState) else ServiceState.CREATED


def set_service_state(service: object, state: ServiceState) -> None:
    # a class with __slots__ and no __dict__ cannot hold it: its state is then not observable
    try:
        object.__setattr__(service, _STATE_ATTR, state)
    except (AttributeError, TypeError):
        pass


def stopping_notice(service: object, *, create: bool = True) -> ShutdownNotice | None:
    """``service.stopping``, created on first use (already set if the shutdown asked before);
    with ``create=False``, None unless the service's code has read it."""
    held = getattr(service, "__dict__", None)
    if held is None:  # __slots__ and no __dict__: a notice of its own each time
        return ShutdownNotice() if create else None
    notice = held.get(_STOPPING_ATTR)
    if notice is None and create:
        notice = held[_STOPPING_ATTR] = ShutdownNotice()
        if held.get(_STOP_ASKED_ATTR):
            notice.set()
    return notice if isinstance(notice, ShutdownNotice) else None


def ask_to_stop(service: object) -> None:
    """The first moment of shutdown: ``service.stopping`` is set (now, or when first read)."""
    held = getattr(service, "__dict__", None)
    if held is None:
        return
    held[_STOP_ASKED_ATTR] = True
    notice = held.get(_STOPPING_ATTR)
    if isinstance(notice, ShutdownNotice):
        notice.set()


def spawned_tasks(service: object, *, create: bool = True) -> SpawnedTasks | None:
    """The tasks ``service`` spawned (created on first use); None if it has none and
    ``create`` is false."""
    held = getattr(service, "__dict__", None)
    if held is None:
        return SpawnedTasks() if create else None
    tasks = held.get(_SPAWNED_ATTR)
    if tasks is None and create:
        tasks = held[_SPAWNED_ATTR] = SpawnedTasks()
        report = held.get(_SPAWN_REPORT_ATTR)
        if report is not None:
            tasks.failed = functools.partial(report, held[_SPAWN_NAME_ATTR])
    return tasks if isinstance(tasks, SpawnedTasks) else None


def report_spawned_failures(service: object, name: str, report: ServiceTaskFailed) -> None:
    """The tasks ``service`` spawned, or spawns from now on, that raise go to ``report`` with the
    service's ``name``. Its tasks are made on its first spawn (most services never spawn one) and
    get the report then: until then the service holds only the one ``report`` every service
    shares, and its name."""
    held = getattr(service, "__dict__", None)
    if held is None:  # __slots__ and no __dict__: each spawn makes its own (the fallback logger)
        return
    tasks = held.get(_SPAWNED_ATTR)
    if isinstance(tasks, SpawnedTasks):
        tasks.failed = functools.partial(report, name)
    elif tasks is None:
        held[_SPAWN_REPORT_ATTR], held[_SPAWN_NAME_ATTR] = report, name
