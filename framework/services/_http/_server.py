"""uvicorn, embedded: the listening socket, ``Connection: close`` at shutdown, the cut-off time."""

from __future__ import annotations

import errno
import math
import socket
from typing import Any

from framework.services._http._connections import Connections
from framework.services._http._errors import ListenError
from framework.services._http._front import CLOSE

__all__ = (
    "address",
    "close_responses",
    "drain_times",
    "listen",
    "port_setting",
)

# Of the stop bound, the share kept after the drain for cutting off what is left and for the app's
# lifespan shutdown; never more than _RESERVE_MAX seconds.
_RESERVE_SHARE = 0.2
_RESERVE_MAX = 1.0


def port_setting(settings: Any, section: object) -> tuple[str, str]:
    """The key and environment variable of the port setting: ``http.port``, ``APP_HTTP__PORT``.

    ``section`` is the service's settings object; the key is the field of the app's ``settings``
    that holds it (``http`` unless the app names it otherwise).
    """
    name = "http"
    for field in type(settings).model_fields if settings is not None else ():
        if getattr(settings, field, None) is section:
            name = field
            break
    config = getattr(settings, "model_config", {}) if settings is not None else {}
    prefix = config.get("env_prefix", "APP_") or ""
    delimiter = config.get("env_nested_delimiter", "__") or "__"
    return f"{name}.port", f"{prefix}{name}{delimiter}port".upper()


def listen(
    host: str, port: int, backlog: int, setting: tuple[str, str] = ("http.port", "APP_HTTP__PORT")
) -> socket.socket:
    """A listening TCP socket on ``host:port``; `ListenError` saying what to change if not.

    ``setting`` (key, environment variable) is named in the message when the port is the issue.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only for it, and
    # without it small responses wait ~40 ms on Nagle's algorithm and the peer's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as exc:
        sock.close()
        reason = (exc.strerror or str(exc)).lower()
        key, env = setting
        if exc.errno == errno.EADDRINUSE:
            hint = (
                f"stop the process using it, or set {key} (environment: {env}) "
                "to a free port (0 picks one)"
            )
        elif exc.errno == errno.EACCES:
            hint = (
                f"ports below 1024 need privileges: set {key} (environment: {env}) to 1024 or above"
            )
        else:
            host_key = key.rpartition(".")[0] + ".host"
            hint = f"set {host_key} to an address of this machine (127.0.0.1, 0.0.0.0, ::)"
        # from None: the message says it all; the OSError below it would only repeat it
        raise ListenError(
            f"cannot listen on {address(host, port)}: {reason}; {hint}", exc.errno
        ) from None
    return sock


def close_responses(connections: Connections) -> None:
    """Give the responses not yet started on ``connections`` ``Connection: close``.

    Called when the shutdown notice is set. The front app hands these requests uvicorn's own
    ``send``; their request cycles (h11 and httptools alike) put their default headers first in
    the response and close the connection after one that says ``Connection: close``. Requests that
    arrive later have their ``send`` watched by the front app instead.
    """
    from framework._compat.uvicorn import close_after_response

    for protocol in list(connections.http.values()):
        close_after_response(protocol, CLOSE)


def address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def drain_times(now: float, deadline: float) -> tuple[float, float]:
    """When to cut off the requests still running, and when to abort the transports still open:
    the deadline less a reserve (for that, and the app's lifespan shutdown), less half of it."""
    if math.isinf(deadline):
        return math.inf, math.inf
    reserve = min(_RESERVE_MAX, _RESERVE_SHARE * max(0.0, deadline - now))
    return deadline - reserve, deadline - reserve / 2
