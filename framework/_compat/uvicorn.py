"""uvicorn's private parts the embedded HTTP server uses, and why.

uvicorn's public ground is `Config` (whose ``http`` and ``ws`` also take a protocol class of
one's own), ``Server(config).serve(sockets=...)`` and ``Server.should_exit`` / ``force_exit``.
With it the framework tracks its connections itself (its own subclasses of the protocol classes
note ``connection_made`` and ``connection_lost``). What an embedded server needs beyond that is
here:

- the protocol classes behind ``http="auto" | "h11" | "httptools"`` and ``ws="auto"`` (uvicorn's
  ``HTTP_PROTOCOLS`` and ``WS_PROTOCOLS`` tables): the framework subclasses the one uvicorn would
  pick, and names it in its log;
- the ``capture_signals``, ``startup`` and ``shutdown`` steps of ``Server.serve()``, and the
  server's ``started``, ``servers`` and ``lifespan``: the application handles the signals, wants
  to know when the server listens, and drains its own way (no reset of the connections queued
  for accept, lame-duck keep-alive connections, websockets closed with 1012, a bound) before the
  app's lifespan shutdown; a failed lifespan startup (``lifespan.should_exit``, which uvicorn
  before 0.50 leaves at that) is made the ``SystemExit(3)`` later versions raise;
- ``server_state.tasks``: the tasks of the requests being handled, which a drain counts and cuts
  off, and ``server_state.total_requests``, the requests served, which a supervisor's worker
  reports (the ASGI app counting them itself would cost every request what uvicorn does anyway);
- the keywords uvicorn builds a protocol with (``config``, ``server_state``, ``app_state``):
  connections accepted from the listen queue at shutdown are served by a protocol built so, as
  when uvicorn accepts one;
- a connection's request cycles (``cycle``, httptools' ``pipeline``) with their
  ``response_started``, ``response_complete`` and ``default_headers``, a protocol's
  ``shutdown()`` and ``access_log``: whether a connection is idle, ``Connection: close`` for the
  responses not yet started once shutdown begins, a 503 for a request cut off before its response
  started, closing a connection when idle (a websocket with 1012), the access log off for one
  server only (``Config(access_log=False)`` silences the logger every server shares).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import re
import sys
import warnings
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from framework._compat import require

__all__ = (
    "SUPPORTED",
    "close_after_response",
    "close_servers",
    "closes_after",
    "http_protocol",
    "idle",
    "new_connection",
    "request_tasks",
    "requests_served",
    "response_started",
    "server_class",
    "shut_down",
    "silence_access_log",
    "websocket_protocol",
)

SUPPORTED = ">=0.32.1,<0.55"
"""The uvicorn versions this adapter was written and tested for (``pyproject.toml``'s range)."""

require("uvicorn", SUPPORTED)

_HTTPTOOLS = "uvicorn.protocols.http.httptools_impl"


# -- the protocol classes -------------------------------------------------------------------------


def http_protocol(name: str) -> tuple[str, type[asyncio.Protocol]]:
    """The HTTP protocol class uvicorn uses for ``http=name`` and what it is (``h11`` or
    ``httptools``; ``auto`` is httptools when installed, else h11)."""
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    protocol: type[asyncio.Protocol] = import_from_string(HTTP_PROTOCOLS[name])
    return protocol.__module__.rpartition(".")[2].removesuffix("_impl"), protocol


# What websockets 14 and later say of the legacy server uvicorn before 0.50 serves ``ws="auto"``
# with (on import, and for each connection: uvicorn's handler takes two arguments). They are
# uvicorn's, not the application's: under ``filterwarnings = error`` (pytest) they would fail the
# HTTP service's start, and then every websocket handshake.
_LEGACY_WEBSOCKETS = (
    "websockets.legacy is deprecated",
    "websockets.server.WebSocketServerProtocol is deprecated",
    "remove second argument of ws_handler",
)


@contextlib.contextmanager
def _legacy_websockets_quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in _LEGACY_WEBSOCKETS:
            warnings.filterwarnings("ignore", re.escape(message), DeprecationWarning)
        yield


def websocket_protocol() -> type[asyncio.Protocol] | None:
    """The websocket protocol class uvicorn uses for ``ws="auto"`` (None: no websocket library).

    When that is websockets' legacy server (uvicorn before 0.50 with websockets installed), its
    deprecation warnings are kept out of the application's: on import, and as each connection's
    protocol is built.
    """
    from uvicorn.config import WS_PROTOCOLS
    from uvicorn.importer import import_from_string

    with _legacy_websockets_quiet():
        protocol: type[asyncio.Protocol] | None = import_from_string(WS_PROTOCOLS["auto"])
    if protocol is None or "websockets.legacy" not in sys.modules:
        return protocol
    if not protocol.__module__.endswith(".websockets_impl"):
        return protocol

    class LegacyWebSocketProtocol(protocol):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            with _legacy_websockets_quiet():
                super().__init__(*args, **kwargs)

    LegacyWebSocketProtocol.__qualname__ = protocol.__qualname__
    return LegacyWebSocketProtocol


def silence_access_log(protocol: Any) -> None:
    """No access log lines for this connection's requests (called as it is made)."""
    protocol.access_log = False


# -- the server -----------------------------------------------------------------------------------


@functools.cache
def server_class() -> Callable[..., Any]:
    """uvicorn's `Server`, made to live inside an application (built on first use).

    ``server_class()(config, on_started, drain)``: it leaves the signals alone, calls
    ``on_started(listening)`` once its startup is over (a failed lifespan startup is
    ``SystemExit(3)`` instead, whatever the version), and at shutdown awaits ``drain(server)``
    instead of uvicorn's own closing of the connections, then the app's lifespan shutdown (unless
    ``force_exit`` was set meanwhile).
    """
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        def __init__(
            self,
            config: uvicorn.Config,
            on_started: Callable[[bool], None],
            drain: Callable[[Any], Awaitable[None]],
        ) -> None:
            super().__init__(config)
            self.servers: list[asyncio.Server] = []  # set by startup(); none before
            self.framework_on_started = on_started
            self.framework_drain = drain

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn would take SIGINT/SIGTERM over; the application handles them
            yield

        async def startup(self, sockets: list[Any] | None = None) -> None:
            await super().startup(sockets)
            if not self.started and self.lifespan.should_exit:
                # the app's lifespan startup failed: uvicorn before 0.50 returns, later ones
                # exit with code 3, as every failed startup does; here always the latter
                raise SystemExit(3)
            self.framework_on_started(bool(self.started))

        async def shutdown(self, sockets: list[Any] | None = None) -> None:
            await self.framework_drain(self)
            if not self.force_exit:
                await self.lifespan.shutdown()

    return EmbeddedServer


def close_servers(server: Any) -> None:
    """Close the event loop's servers that accept connections for ``server``."""
    for listening in server.servers:
        listening.close()


def request_tasks(server: Any) -> set[asyncio.Task[Any]]:
    """The live set of the tasks running requests (and websocket handlers) on ``server``."""
    tasks: set[asyncio.Task[Any]] = server.server_state.tasks
    return tasks


def requests_served(server: Any) -> int:
    """How many requests ``server`` has received so far."""
    return int(server.server_state.total_requests)


def new_connection(server: Any) -> asyncio.Protocol:
    """A protocol for a connection ``server`` did not accept itself, built with the keywords its
    own startup builds one with (for ``loop.connect_accepted_socket``)."""
    config = server.config
    protocol: asyncio.Protocol = config.http_protocol_class(
        config=config, server_state=server.server_state, app_state=server.lifespan.state
    )
    return protocol


# -- a connection and its requests ----------------------------------------------------------------


def idle(protocol: Any) -> bool:
    """Whether an HTTP connection is between requests (none yet, or the last one answered)."""
    cycle = protocol.cycle
    return cycle is None or bool(cycle.response_complete)


def close_after_response(protocol: Any, header: tuple[bytes, bytes]) -> None:
    """Give the responses not yet started on this HTTP connection ``header`` (``Connection:
    close``): uvicorn's request cycles put their default headers first in a response, and close
    the connection after one that says so."""
    cycles = [protocol.cycle]
    if _is_httptools(protocol):  # requests read ahead, waiting their turn
        cycles += [cycle for cycle, _app in protocol.pipeline]
    for cycle in cycles:
        if cycle is not None and not cycle.response_started and header not in cycle.default_headers:
            cycle.default_headers = [*cycle.default_headers, header]


def shut_down(protocol: Any) -> None:
    """Close the connection when idle, else after the response under way; a websocket's with a
    close frame 1012."""
    shutdown = protocol.shutdown
    with contextlib.suppress(Exception):  # refused in the state the connection is in (closing)
        shutdown()


def response_started(send: Callable[..., Any]) -> bool:
    """Whether the response of a request has started, from its ``send`` (uvicorn's own: a method
    of the request's cycle)."""
    return bool(send.__self__.response_started)  # type: ignore[attr-defined]


def closes_after(send: Callable[..., Any], header: tuple[bytes, bytes]) -> bool:
    """Whether the response ``send`` sends carries ``header`` already (`close_after_response`
    gave it to its request cycle). Any ``send`` may come here (an ASGI test client's too): only a
    method of an object keeping ``default_headers``, as uvicorn's request cycles do, can say so."""
    cycle = send.__self__ if inspect.ismethod(send) else None
    return header in getattr(cycle, "default_headers", ())  # none: not a request cycle's send


def _is_httptools(protocol: Any) -> bool:
    module = sys.modules.get(_HTTPTOOLS)
    return module is not None and isinstance(protocol, module.HttpToolsProtocol)
