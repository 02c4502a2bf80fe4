"""Tasks that outlive the call that spawned them, for ``Service.run()`` bodies.

``app.start()`` returns while ``run()`` bodies go on, and ``app.stop()`` may be called from another
task; an anyio task group cannot span that, so bodies run as native tasks of the backend (an
asyncio task, a trio system task). The lifecycle engine still owns them: it cancels each body and
waits for it before that service's ``stop()``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import sniffio

__all__ = ("DetachedTasks",)


class DetachedTasks:
    """Quacks like a task group's ``start_soon``, without the enclosing ``async with``."""

    def __init__(self) -> None:
        self._tasks: set[Any] = set()  # strong references: asyncio keeps only weak ones
        self._forget = self._tasks.discard  # one bound method for every task's done callback

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: object = None
    ) -> None:
        backend = sniffio.current_async_library()
        if backend == "asyncio":
            import asyncio

            task: asyncio.Task[Any] = asyncio.get_running_loop().create_task(
                func(*args), name=str(name)
            )
            self._tasks.add(task)
            task.add_done_callback(self._forget)
        elif backend == "trio":
            import trio

            trio.lowlevel.spawn_system_task(func, *args, name=name)
        else:  # pragma: no cover - anyio supports only these two
            raise RuntimeError(f"unsupported async library {backend!r}")
