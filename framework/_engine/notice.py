"""A notice set once, at the first moment of shutdown: ``is_set()`` and ``await wait()``.

The HTTP service hands one to every request and websocket (``scope["extensions"]
["framework.shutdown"]``); every service has one as ``self.stopping``.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio

__all__ = ("ShutdownNotice",)


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
