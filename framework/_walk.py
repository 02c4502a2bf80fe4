"""The one walk of the engine: ready items in a queue, taken by as few tasks as concurrency needs.

Start and stop both walk the dependency graph this way (start: dependents become ready; stop:
dependencies do). A task takes the next ready item and runs its step; a step that finishes without
suspending (a no-op ``start()``) needs no task of its own, so a graph of those costs one task. A
step that suspends (it awaits something) first hands the items still queued to new tasks, so the
others go on concurrently while it waits, as if each had a task of its own.

Each task's steps run in one cancel scope, its `Timer`: a step bounds its call with it, and the
deadline is set only if the call waits (a call that returns without waiting cannot be interrupted,
so it needs no timer). Once a deadline has fired the task goes on in a new scope.
"""

from __future__ import annotations

import math
import types
from collections import deque
from collections.abc import Callable, Coroutine, Generator, Iterable, Sequence
from typing import Any, Generic, TypeVar

import anyio

__all__ = ("Timer", "Walk")

T = TypeVar("T")


class Timer:
    """The deadline of one walk task's current step, in the cancel scope around its steps."""

    def __init__(self, scope: anyio.CancelScope) -> None:
        self.scope = scope

    @property
    def expired(self) -> bool:
        """Whether the deadline fired (or the scope was cancelled): the step's call was cut short."""
        return self.scope.cancel_called

    async def run(self, call: Callable[[], Coroutine[Any, Any, Any]], deadline: float) -> None:
        """Await ``call()`` until ``deadline``; cancelled past it (`expired` then tells)."""
        coro = call()
        try:
            suspended = coro.send(None)
        except StopIteration:
            return  # returned without waiting: nothing to bound
        scope = self.scope
        scope.deadline = deadline
        try:
            await _resume(coro, suspended)
        finally:
            if not scope.cancel_called:
                scope.deadline = math.inf


Step = Callable[[T, Timer], Coroutine[Any, Any, Sequence[T]]]


class Walk(Generic[T]):
    """``step(item)`` returns the items it made ready; ``spawn(fn)`` runs ``fn()`` in a new task."""

    def __init__(self, step: Step[T], spawn: Callable[[Callable[[], Any]], object]) -> None:
        self.step = step
        self.spawn = spawn
        self.ready: deque[T] = deque()
        self.waiting_tasks = 0
        """Tasks spawned that have not taken an item yet."""

    def add(self, items: Iterable[T]) -> None:
        """Items made ready outside the walk's own tasks: a task takes them (unless one will)."""
        self.ready.extend(items)
        if self.ready and not self.waiting_tasks:
            self._spawn_tasks(1)

    async def run(self) -> None:
        """Take ready items until none is left (run inline, or by the tasks the walk spawns)."""
        ready, step = self.ready, self.step
        while ready:
            with anyio.CancelScope() as scope:
                timer = Timer(scope)
                while ready and not scope.cancel_called:
                    coro = step(ready.popleft(), timer)
                    try:
                        suspended = coro.send(None)
                    except StopIteration as done:
                        made = done.value
                    else:  # it waits: the others must not wait for it
                        self._spawn_tasks(len(ready) - self.waiting_tasks)
                        made = await _resume(coro, suspended)
                    ready.extend(made)

    def _spawn_tasks(self, n: int) -> None:
        for _ in range(n):
            self.waiting_tasks += 1
            self.spawn(self._task)

    async def _task(self) -> None:
        self.waiting_tasks -= 1
        await self.run()


@types.coroutine
def _resume(coro: Coroutine[Any, Any, T], suspended: Any) -> Generator[Any, Any, T]:
    """Go on awaiting ``coro``, first sent ``None`` by hand, which suspended on ``suspended``: what
    ``await`` does (the backend's values and exceptions pass through), from its second step."""
    while True:
        try:
            sent = yield suspended
        except GeneratorExit:
            coro.close()
            raise
        except BaseException as exc:  # cancellation, thrown in by the backend
            try:
                suspended = coro.throw(exc)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
        else:
            try:
                suspended = coro.send(sent)
            except StopIteration as done:
                return done.value  # type: ignore[no-any-return]
