"""The connections of one embedded server, tracked by protocol classes of its own.

uvicorn takes the protocol classes it serves with from its `Config` (``http``, ``ws``): the
service gives it subclasses of the ones uvicorn would pick that note each connection as it is
made and lost. An HTTP connection upgraded to a websocket is handed to a websocket protocol on
the same transport (the HTTP protocol hears nothing more of it): the websocket protocol's
``connection_made`` takes the transport's entry over.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ("Connections", "protocol_classes")


class Connections:
    """The open connections of one server, by transport: HTTP ones and websockets."""

    def __init__(self) -> None:
        self.http: dict[asyncio.Transport, Any] = {}
        self.websockets: dict[asyncio.Transport, Any] = {}

    def __len__(self) -> int:
        return len(self.http) + len(self.websockets)

    def protocols(self) -> list[Any]:
        """The protocol of each connection (a snapshot)."""
        return [*self.http.values(), *self.websockets.values()]

    def transports(self) -> list[asyncio.Transport]:
        """The transport of each connection (a snapshot)."""
        return [*self.http, *self.websockets]

    def made(self, transport: asyncio.Transport, protocol: Any, *, websocket: bool) -> None:
        if websocket:
            self.http.pop(transport, None)  # upgraded: the websocket protocol has it now
            self.websockets[transport] = protocol
        else:
            self.http[transport] = protocol

    def lost(self, transport: asyncio.Transport, protocol: Any) -> None:
        for table in (self.http, self.websockets):
            if table.get(transport) is protocol:
                del table[transport]


def protocol_classes(
    http: str, *, access_log: bool, connections: Connections
) -> tuple[str, type[asyncio.Protocol], type[asyncio.Protocol] | None]:
    """What serves HTTP (``h11`` or ``httptools``, ``auto`` resolved as uvicorn resolves it), and
    the HTTP and websocket protocol classes that track their connections in ``connections``
    (None for websockets when no websocket library is installed).

    ``access_log=False`` turns the access log off for this server only: uvicorn decides per
    connection from the "uvicorn.access" logger having handlers, which the framework's logging
    gives it, and ``Config(access_log=False)`` would silence that shared logger for every server
    in the process.
    """
    from framework._compat import uvicorn as compat

    name, http_base = compat.http_protocol(http)

    class TrackedHttp(http_base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            if not access_log:
                compat.silence_access_log(self)

        def connection_made(self, transport: asyncio.Transport) -> None:
            self.tracked_transport = transport
            super().connection_made(transport)
            connections.made(transport, self, websocket=False)

        def connection_lost(self, exc: Exception | None) -> None:
            try:
                super().connection_lost(exc)
            finally:
                connections.lost(self.tracked_transport, self)

    ws_base = compat.websocket_protocol()
    if ws_base is None:
        return name, TrackedHttp, None

    class TrackedWebSocket(ws_base):  # type: ignore[misc, valid-type]
        def connection_made(self, transport: asyncio.Transport) -> None:
            self.tracked_transport = transport
            super().connection_made(transport)
            connections.made(transport, self, websocket=True)

        def connection_lost(self, exc: Exception | None) -> None:
            try:
                super().connection_lost(exc)
            finally:
                connections.lost(self.tracked_transport, self)

    return name, TrackedHttp, TrackedWebSocket
