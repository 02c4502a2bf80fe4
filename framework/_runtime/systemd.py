"""systemd's two environment protocols: readiness notification and socket activation.

- ``sd_notify``: when ``NOTIFY_SOCKET`` names a datagram socket (a path, or ``@name`` in the
  abstract namespace), `Notifier` sends it newline-separated ``KEY=VALUE`` messages: ``READY=1``,
  ``STOPPING=1``, ``RELOADING=1``, ``STATUS=...``, ``WATCHDOG=1``. With ``WATCHDOG_USEC`` set (and
  ``WATCHDOG_PID`` unset or this process), `watchdog_loop` pings every half of it from the event
  loop, so a blocked loop stops the pings and the service manager notices.
- Socket activation: ``LISTEN_FDS=N`` and ``LISTEN_PID`` (this process) mean fds ``3 .. 3+N-1``
  are inherited listening sockets, named by ``LISTEN_FDNAMES`` (``a:b:...``).
  `take_inherited_socket` hands out the one whose address matches, so an HTTP server serves on
  it instead of binding. The variables are unset once read: children never inherit them by mistake.

The framework's supervisor speaks the same two protocols to its workers. Without the variables
everything here is a no-op; sending never raises into the caller (a failure is logged once).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Mapping, MutableMapping

import anyio

from framework._engine.events import (
    Event,
    EventHandler,
    ShutdownFinished,
    ShutdownStarted,
    StartupFinished,
)

__all__ = (
    "SD_LISTEN_FDS_START",
    "WORKER_ENV",
    "Notifier",
    "inherited_sockets",
    "listen_environment",
    "notify_lifecycle",
    "take_inherited_socket",
    "watchdog_loop",
)

WORKER_ENV = "FRAMEWORK_WORKER"
"""Set by the framework's supervisor in each worker's environment: the worker's slot number."""

SD_LISTEN_FDS_START = 3
"""The first inherited file descriptor under socket activation."""

_LISTEN_VARS = ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES")


# -- sd_notify --------------------------------------------------------------------------------


class Notifier:
    """Sends sd_notify messages to ``address`` (``None``: every method is a no-op).

    ``Notifier.from_env()`` reads ``NOTIFY_SOCKET``, ``WATCHDOG_USEC`` and ``WATCHDOG_PID``.
    Each method returns whether the message was sent; none raises.
    """

    def __init__(self, address: str | None, *, watchdog_usec: int | None = None) -> None:
        self.address = address or None
        self.watchdog_usec = watchdog_usec if watchdog_usec and watchdog_usec > 0 else None
        self._warned = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Notifier:
        """The notifier the environment asks for (a no-op one when ``NOTIFY_SOCKET`` is unset)."""
        env = os.environ if environ is None else environ
        usec: int | None = None
        pid = env.get("WATCHDOG_PID", "").strip()
        if not pid or pid == str(os.getpid()):
            with contextlib.suppress(ValueError):
                usec = int(env.get("WATCHDOG_USEC", "").strip())
        return cls(env.get("NOTIFY_SOCKET") or None, watchdog_usec=usec)

    @property
    def enabled(self) -> bool:
        """Whether messages go anywhere."""
        return self.address is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings: half of ``WATCHDOG_USEC``; ``None``: no watchdog."""
        if self.address is None or self.watchdog_usec is None:
            return None
        return self.watchdog_usec / 2 / 1_000_000

    def ready(self, status: str | None = None) -> bool:
        """``READY=1``: startup (or a reload) is complete."""
        return self.notify("READY=1", *_status(status))

    def stopping(self, status: str | None = None) -> bool:
        """``STOPPING=1``: shutdown has begun."""
        return self.notify("STOPPING=1", *_status(status))

    def reloading(self, status: str | None = None) -> bool:
        """``RELOADING=1`` with ``MONOTONIC_USEC`` (for ``Type=notify-reload``); send `ready` after."""
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *_status(status))

    def status(self, text: str) -> bool:
        """``STATUS=text``: a one-line description shown by ``systemctl status``."""
        return self.notify(*_status(text))

    def watchdog(self) -> bool:
        """``WATCHDOG=1``: the keep-alive ping."""
        return self.notify("WATCHDOG=1")

    def notify(self, *fields: str) -> bool:
        """Send ``fields`` (``KEY=VALUE`` each) as one datagram; never blocks, never raises."""
        if self.address is None or not fields:
            return False
        data = ("\n".join(fields) + "\n").encode()
        try:
            # a socket per message: nothing to close, safe from any thread, cheap at this rate
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)  # never stall the event loop on a full receive queue
                sock.sendto(data, _socket_address(self.address))
        except (OSError, ValueError) as exc:
            self._warn(exc)
            return False
        return True

    def _warn(self, exc: BaseException) -> None:
        if self._warned:
            return
        self._warned = True
        from loguru import logger

        logger.bind(logger_name="framework._runtime.systemd").warning(
            f"cannot notify the service manager at NOTIFY_SOCKET={self.address}: {exc}; "
            "readiness and watchdog messages are not delivered (further failures are not logged)"
        )


async def watchdog_loop(notifier: Notifier) -> None:
    """Send ``WATCHDOG=1`` every `Notifier.watchdog_interval` from the event loop, until cancelled.

    Returns at once when there is no watchdog. Run it in the application's task group: a blocked
    event loop stops the pings, which is what the service manager's watchdog is for. In a
    supervisor's worker asked for heartbeats, it sends those instead
    (`framework._runtime.heartbeat`): the supervisor pings the service manager for its workers.
    """
    from framework._runtime.heartbeat import heartbeat_interval, heartbeat_loop

    beat = heartbeat_interval()
    if beat is not None and notifier.enabled:
        await heartbeat_loop(notifier, beat)
        return
    interval = notifier.watchdog_interval
    if interval is None:
        return
    while True:
        notifier.watchdog()
        await anyio.sleep(interval)


def notify_lifecycle(notifier: Notifier) -> EventHandler:
    """An event handler telling the service manager about the lifecycle: ``READY=1`` once every
    service has started, ``STOPPING=1`` at the first moment of shutdown, ``STATUS=`` as it goes."""

    def handle(event: Event) -> None:
        if isinstance(event, StartupFinished):
            if event.ok:
                notifier.ready(f"ready: started in {event.duration:.3f} s")
            else:
                notifier.status("startup failed; rolling back")
        elif isinstance(event, ShutdownStarted):
            notifier.stopping(f"shutting down: {event.reason}")
        elif isinstance(event, ShutdownFinished):
            notifier.status("stopped")

    return handle


def _status(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return ("STATUS=" + " ".join(text.split()),)


def _socket_address(address: str) -> str | bytes:
    if address.startswith("@"):
        return b"\0" + address[1:].encode()  # the abstract namespace (Linux)
    if address.startswith("/"):
        return address
    raise ValueError("expected an absolute path or an @abstract name")


# -- socket activation -------------------------------------------------------------------------

_pool: list[tuple[str, socket.socket]] | None = None
_pool_lock = threading.Lock()


def inherited_sockets(environ: MutableMapping[str, str] | None = None) -> list[socket.socket]:
    """The listening sockets passed by socket activation and not taken yet (read once, then kept).

    The first call reads ``LISTEN_FDS``/``LISTEN_PID``/``LISTEN_FDNAMES`` and removes them from
    ``environ`` (default ``os.environ``); sockets meant for another process are ignored.
    """
    with _pool_lock:
        return [sock for _, sock in _inherited(environ)]


def take_inherited_socket(host: str, port: int, name: str | None = None) -> socket.socket | None:
    """The inherited listening socket bound to ``host:port`` (then no longer offered), or ``None``.

    With ``port`` 0 (any port), the socket named ``name`` (``LISTEN_FDNAMES``) on ``host`` matches,
    else the first one on ``host``. Bind a socket of your own when this returns ``None``.
    """
    with _pool_lock:
        pool = _inherited(None)
        match = _match(pool, host, port, name)
        if match is None:
            return None
        pool.remove(match)
        return match[1]


def listen_environment(names: list[str], pid: int) -> dict[str, str]:
    """The variables that pass ``len(names)`` sockets, at fds 3 on, to process ``pid``."""
    return {
        "LISTEN_FDS": str(len(names)),
        "LISTEN_PID": str(pid),
        "LISTEN_FDNAMES": ":".join(names),
    }


def _inherited(environ: MutableMapping[str, str] | None) -> list[tuple[str, socket.socket]]:
    global _pool
    if _pool is not None:
        return _pool
    env = os.environ if environ is None else environ
    values = {key: env.pop(key, "") for key in _LISTEN_VARS}
    _pool = []
    try:
        count = int(values["LISTEN_FDS"])
        pid = int(values["LISTEN_PID"])
    except ValueError:
        return _pool
    if pid != os.getpid() or count <= 0:
        return _pool
    names = values["LISTEN_FDNAMES"].split(":") if values["LISTEN_FDNAMES"] else []
    for index in range(count):
        fd = SD_LISTEN_FDS_START + index
        try:
            sock = socket.socket(fileno=fd)
        except OSError:
            continue  # not a socket (or closed): nothing to serve on
        os.set_inheritable(fd, False)  # passed on only on purpose (pass_fds)
        name = names[index] if index < len(names) else "unknown"
        _pool.append((name, sock))
    return _pool


def _match(
    pool: list[tuple[str, socket.socket]], host: str, port: int, name: str | None
) -> tuple[str, socket.socket] | None:
    candidates = []
    for entry in pool:
        sock = entry[1]
        if sock.family not in (socket.AF_INET, socket.AF_INET6):
            continue
        if sock.type != socket.SOCK_STREAM:
            continue
        try:
            bound_host, bound_port = sock.getsockname()[:2]
        except OSError:
            continue
        if not _same_host(host, bound_host):
            continue
        if port and bound_port == port:
            return entry
        if not port:
            candidates.append(entry)
    named = [entry for entry in candidates if name is not None and entry[0] == name]
    best = named or candidates
    return best[0] if best else None


def _same_host(wanted: str, bound: str) -> bool:
    try:
        return ipaddress.ip_address(wanted.strip("[]")) == ipaddress.ip_address(bound)
    except ValueError:
        pass
    try:  # a host name: any of its addresses
        infos = socket.getaddrinfo(wanted, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return any(ipaddress.ip_address(info[4][0]) == ipaddress.ip_address(bound) for info in infos)


def worker_slot(environ: Mapping[str, str] | None = None) -> int | None:
    """This process's worker slot when a supervisor started it, else ``None``."""
    value = (os.environ if environ is None else environ).get(WORKER_ENV, "")
    return int(value) if value.isdigit() else None


def log_worker_pid() -> None:
    """Have every log line of this process carry ``pid`` (and ``worker``, in a worker)."""
    from loguru import logger

    extra: dict[str, object] = {"pid": os.getpid()}
    slot = worker_slot()
    if slot is not None:
        extra["worker"] = slot
    logger.configure(extra=extra)
