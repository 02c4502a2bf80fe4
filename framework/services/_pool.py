"""The connections checked out of a `DatabaseService`'s pool: counted, waited for at stop, and
terminated when the stop bound passes."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from loguru import Logger
    from sqlalchemy.engine import Engine
    from sqlalchemy.pool import ConnectionPoolEntry

__all__ = ("CheckedOut", "terminate")


class CheckedOut:
    """The pool's checked-out connections, tracked through its ``checkout``/``checkin`` events.

    ``checkin`` can come from another thread (a connection collected by the garbage collector), so
    waiters are woken through the loop's thread-safe scheduling.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._entries: set[ConnectionPoolEntry] = set()
        self._none_left = asyncio.Event()

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def watch(cls, engine: Engine, loop: asyncio.AbstractEventLoop) -> CheckedOut:
        """Track the connections checked out of ``engine``'s pool (and of the pools replacing it)."""
        from sqlalchemy import event

        tracker = cls(loop)
        event.listen(engine, "checkout", tracker._checkout)
        event.listen(engine, "checkin", tracker._checkin)
        event.listen(engine, "detach", tracker._checkin)  # no longer the pool's: not waited for
        return tracker

    def _checkout(self, dbapi_connection: Any, entry: ConnectionPoolEntry, proxy: Any) -> None:
        self._entries.add(entry)

    def _checkin(self, dbapi_connection: Any, entry: ConnectionPoolEntry) -> None:
        self._entries.discard(entry)
        if self._entries:
            return
        if threading.get_ident() == self._thread:
            self._none_left.set()
        else:
            try:
                self._loop.call_soon_threadsafe(self._none_left.set)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    async def wait_until_none(self) -> None:
        while self._entries:
            self._none_left.clear()
            await self._none_left.wait()

    async def close_all(self, log: Logger, *, in_thread: bool = False) -> None:
        """Close every connection still checked out; the server rolls its transaction back.

        The stop bound has passed, so nothing waits on the server: an async driver connection
        that can be terminated (asyncpg) is closed at once, its socket dropped without a round
        trip (a frozen server would never answer one), then invalidated the way SQLAlchemy does.
        Its holder's next use raises. A synchronous driver's close blocks: it runs in a worker
        thread (``in_thread``).
        """
        from sqlalchemy.util import greenlet_spawn

        entries = list(self._entries)
        for entry in entries:
            try:
                if not in_thread:
                    terminate(entry)
                if in_thread:
                    await anyio.to_thread.run_sync(entry.invalidate, abandon_on_cancel=True)
                else:
                    await greenlet_spawn(entry.invalidate)
            except Exception as exc:
                log.error(f"could not close a checked-out connection: {type(exc).__name__}")


def terminate(entry: ConnectionPoolEntry) -> None:
    """Drop an async driver connection at once, without waiting on the server (asyncpg's
    ``terminate()``; a driver without one is left to the graceful close)."""
    driver = getattr(entry.dbapi_connection, "driver_connection", None)
    terminate = getattr(driver, "terminate", None)
    if callable(terminate) and not getattr(driver, "is_closed", lambda: False)():
        terminate()
