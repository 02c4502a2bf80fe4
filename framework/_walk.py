"""The one walk of the engine: run one step inline, go on with one newly ready item, spawn the rest.

Start and stop both walk the dependency graph this way (start: dependents become ready; stop:
dependencies do), so a chain of services costs one task, not one per service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

__all__ = ("walk",)

T = TypeVar("T")


async def walk(
    first: T,
    step: Callable[[T], Awaitable[Sequence[T]]],
    spawn: Callable[[T], None],
) -> None:
    """``step(item)`` returns what it made ready: the first goes on inline, the others are spawned."""
    item: T | None = first
    while item is not None:
        ready = await step(item)
        for other in ready[1:]:
            spawn(other)
        item = ready[0] if ready else None
