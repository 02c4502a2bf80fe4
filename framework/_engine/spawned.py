"""Background tasks owned by a service: `Service.spawn`.

Each task runs detached (it may outlive the call that spawned it) in a cancel scope of its own.
At shutdown the engine awaits a service's tasks before its ``stop()`` (so the services it depends
on, which stop after it, are still there for them), within the service's drain bound, and cancels
those still running then. A task that raises is reported (the application logs it with its name)
and does not stop the application.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import anyio

from framework._engine.detached import DetachedTasks

__all__ = ("SpawnedTasks", "TaskFailed")

TaskFailed = Callable[[str, BaseException], None]
"""Told of a task that raised: its name and the error."""


class SpawnedTasks:
    """The tasks one service spawned and that are still running."""

    def __init__(self) -> None:
        self.running: dict[int, tuple[str, anyio.CancelScope]] = {}
        self.failed: TaskFailed | None = None
        """Set by the engine when the service starts; until then a failure goes to `fallback`."""
        self._keys = itertools.count()
        self._tasks = DetachedTasks()
        self._idle: list[anyio.Event] = []

    @property
    def names(self) -> list[str]:
        """The names of the tasks still running, in the order they were spawned."""
        return [name for name, _ in self.running.values()]

    def spawn(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: str | None = None
    ) -> None:
        """Start ``func(*args)`` in a task of its own (from the event loop's thread)."""
        name = name or getattr(func, "__qualname__", None) or repr(func)
        key, scope = next(self._keys), anyio.CancelScope()
        self.running[key] = (name, scope)
        self._tasks.start_soon(self._run, key, name, scope, func, args, name=name)

    async def _run(
        self,
        key: int,
        name: str,
        scope: anyio.CancelScope,
        func: Callable[..., Coroutine[Any, Any, Any]],
        args: tuple[Any, ...],
    ) -> None:
        try:
            with scope:
                await func(*args)
        except Exception as exc:
            (self.failed or fallback)(name, exc)
        finally:
            del self.running[key]
            if not self.running:
                idle, self._idle = self._idle, []
                for event in idle:
                    event.set()

    async def finish(self, deadline: float) -> list[str]:
        """Wait for every task until ``deadline``; cancel those still running then. Returns the
        names of the tasks that were cancelled."""
        with anyio.CancelScope(deadline=deadline):
            while self.running:
                event = anyio.Event()
                self._idle.append(event)
                await event.wait()
        cancelled = self.names
        for _, scope in list(self.running.values()):
            scope.cancel()
        return cancelled


def fallback(name: str, error: BaseException) -> None:
    """A task failed before its service was started by an application: the standard logger."""
    import logging

    logging.getLogger("framework.services").error(
        "spawned task %r failed: %s: %s", name, type(error).__name__, error
    )
