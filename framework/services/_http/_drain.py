"""How the embedded uvicorn stops serving without dropping a request that a client wrote.

uvicorn's own shutdown closes the listening sockets (resetting the connections still in the
kernel's accept queue) and at once closes every idle keep-alive connection, so a client that had
just written its next request on one gets no answer (uvicorn#3124, gunicorn#3397). Here instead:

1. `close_listeners`: accept what the kernel has queued, then close the listeners; the connections
   accepted so are served like the others.
2. `drain`: for a short lame-duck window, idle keep-alive connections stay open: a request that
   arrives on one is served (with ``Connection: close``, added by the front app once shutdown
   began), then the connection closes. Busy connections close after their response. WebSocket
   handlers have the same window to close on their own (they were given the shutdown notice).
3. After the window, idle connections are closed and open websockets get a close frame 1012
   (uvicorn's ``shutdown()`` of a websocket connection; the handler's ``receive()`` returns
   ``websocket.disconnect`` with that code); then the drain waits for the busy ones.
4. Past ``abort_at`` (after the requests that outran the bound were cut off), the transports left
   are aborted: a client that never reads its response cannot hold the stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from framework.services._http._connections import Connections

if TYPE_CHECKING:
    import uvicorn

__all__ = ("LAME_DUCK", "DrainPlan", "abort_connections", "close_listeners", "drain")

LAME_DUCK = 0.5
"""Seconds idle keep-alive connections and websockets are left open once the drain begins."""
# How often the drain looks at the connections; at most this many connections accepted from the
# queue (the listen backlog bounds it anyway).
_POLL = 0.01
_ACCEPT_MAX = 65536


@dataclass
class DrainPlan:
    """What the service tells its server about the drain to come (event-loop times)."""

    connections: Connections = field(default_factory=Connections)
    listener: socket.socket | None = None
    cut_at: float = math.inf  # requests still running then are cut off by the service
    abort_at: float = math.inf  # transports still open then are aborted
    handing_over: set[asyncio.Task[None]] = field(default_factory=set)
    aborted: int = 0  # connections aborted at abort_at (a client not reading its response)

    async def close_listeners(self, server: uvicorn.Server) -> None:
        """`close_listeners`, then hand the connections accepted so over to the server.

        First the event loop stops accepting and the connections it has just accepted are given
        their transports: asyncio does that a step later, and fails (the connection left open,
        never served) once the listener is closed.
        """
        listener, self.listener = self.listener, None
        if listener is None or listener.fileno() == -1:
            close_listeners(server, None)
            return
        loop = asyncio.get_running_loop()
        with contextlib.suppress(Exception):  # an event loop that does not let go of it
            loop.remove_reader(listener.fileno())
        for _ in range(2):
            await asyncio.sleep(0)
        accepted = close_listeners(server, listener)
        if accepted:
            from framework._compat.uvicorn import new_connection

            factory = functools.partial(new_connection, server)
            for conn in accepted:
                task = loop.create_task(_serve_accepted(loop, factory, conn))
                self.handing_over.add(task)
                task.add_done_callback(self.handing_over.discard)

    async def run(self, server: uvicorn.Server) -> None:
        """Close the listeners (if not yet), then drain within this plan's times."""
        await self.close_listeners(server)
        loop = asyncio.get_running_loop()
        # connections accepted last (by asyncio, or above) become the server's a moment later
        for _ in range(100):
            await asyncio.sleep(_POLL)
            if not self.handing_over or loop.time() >= self.cut_at:
                break
        window_end = min(loop.time() + LAME_DUCK, self.cut_at)
        self.aborted += await drain(
            server, self.connections, window_end=window_end, abort_at=self.abort_at
        )


def close_listeners(server: uvicorn.Server, listener: socket.socket | None) -> list[socket.socket]:
    """Accept every connection queued on ``listener``, then close the listeners; the accepted.

    Synchronous, so that nothing is queued between the last accept and the close.
    """
    from framework._compat.uvicorn import close_servers

    accepted: list[socket.socket] = []
    if listener is not None and listener.fileno() != -1:
        with contextlib.suppress(OSError):  # BlockingIOError: the queue is empty
            listener.setblocking(False)
            while len(accepted) < _ACCEPT_MAX:
                accepted.append(listener.accept()[0])
    close_servers(server)
    if listener is not None:
        listener.close()
    return accepted


async def _serve_accepted(
    loop: asyncio.AbstractEventLoop, factory: Callable[[], asyncio.Protocol], conn: socket.socket
) -> None:
    try:
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await loop.connect_accepted_socket(factory, conn)
    except OSError:
        conn.close()  # the client went away meanwhile


async def drain(
    server: uvicorn.Server, connections: Connections, *, window_end: float, abort_at: float
) -> int:
    """Steps 2 to 4 above; ``window_end`` and ``abort_at`` are event-loop times. Returns how
    many connections had to be aborted."""
    from framework._compat.uvicorn import idle, request_tasks, shut_down

    loop = asyncio.get_running_loop()
    while loop.time() < window_end and not server.force_exit:
        # a websocket: its handler may still close it; an idle connection: a lame duck, a
        # request may still come; a busy one: closes after this response
        waiting = bool(connections.websockets)
        for protocol in list(connections.http.values()):
            if idle(protocol):
                waiting = True
            else:
                shut_down(protocol)
        if not waiting:
            break
        await asyncio.sleep(_POLL)
    for protocol in connections.protocols():
        shut_down(protocol)  # idle: closed now; busy: after its response; websocket: 1012
    tasks = request_tasks(server)
    while loop.time() < abort_at and not server.force_exit:
        if not connections and not tasks:
            return 0
        await asyncio.sleep(_POLL)
    return abort_connections(connections)


def abort_connections(connections: Connections) -> int:
    """Abort the transports still open (their write buffers dropped); how many there were."""
    transports = connections.transports()
    for transport in transports:
        with contextlib.suppress(Exception):
            transport.abort()
    return len(transports)
