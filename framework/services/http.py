"""The built-in HTTP service: any ASGI app served by an embedded uvicorn.

``HttpService(app, settings)`` binds ``settings.host:settings.port`` in ``start()``, runs uvicorn's
``serve()`` in a task of its own and returns once uvicorn accepts connections (after the app's
lifespan startup). In front of the app it answers:

- ``livez_path`` (``/livez``): 200 while the event loop runs;
- ``readyz_path`` (``/readyz``): 200 only while the application is ready (every service started and
  no shutdown begun), else 503; with ``readyz_details``, a JSON body of service names and states;
- ``metrics_path`` (off by default): Prometheus metrics, from a registry private to the service.

``stop()`` drains. The application has already turned ``/readyz`` to 503 and waited
``lifecycle.shutdown_delay``; then uvicorn closes the listening socket, closes idle keep-alive
connections and waits for the requests in flight. Those still running when the stop bound is close
(a reserve of a fifth of it, at most 1 s, is kept for the rest) are cut off: cancelled, answered 503
when no response had started, counted, and ``stop()`` then raises `RequestsCutOffError`. The app's
lifespan shutdown runs last. If ``stop()`` is cancelled (its bound passed, or a forced shutdown),
what is left is cut off at once and the server ends without the lifespan shutdown.

uvicorn runs on asyncio only: on trio, ``start()`` raises `HttpServiceError` saying so. uvicorn and
prometheus-client are imported when a service is created or started, not with this module.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import json
import math
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

import anyio

from framework.errors import FrameworkError
from framework.health import health_metrics
from framework.readiness import AppState
from framework.service import Service
from framework.settings import HttpSettings

if TYPE_CHECKING:
    import uvicorn
    from loguru import Logger
    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics_core import Metric

    from framework.context import ServiceContext

__all__ = (
    "ASGIApp",
    "HttpService",
    "HttpServiceError",
    "HttpSettings",
    "ListenError",
    "RequestsCutOffError",
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application (Starlette, FastAPI, or a plain ``async def app(scope, receive, send)``)."""

# Of the stop bound, the share kept after the drain for cutting off what is left and for the app's
# lifespan shutdown; never more than _RESERVE_MAX seconds.
_RESERVE_SHARE = 0.2
_RESERVE_MAX = 1.0
# After a cancelled stop, how long (shielded) the server task is given to end once cancelled.
_ABORT_GRACE = 0.25
_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
_CUT_OFF_BODY = b"cut off: the server is shutting down\n"


class HttpServiceError(FrameworkError):
    """The HTTP service cannot run as configured, or did not serve or stop as it should."""


class ListenError(HttpServiceError, OSError):
    """The listening socket could not be opened: address in use, not of this machine, privileged."""

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


class RequestsCutOffError(HttpServiceError):
    """``stop()`` cut off requests that were still running, to keep within its stop bound."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


# -- the service ----------------------------------------------------------------------------------


class HttpService(Service):
    """Serves ``app`` with uvicorn; answers the probes and metrics; drains on stop.

    ``port`` is the port actually bound (useful with ``settings.port == 0``) and ``url`` the base
    URL, both known once started. After ``stop()``, ``drained`` is how many requests finished
    after the stop began and ``cut_off`` how many were cut off. With ``metrics_path`` set,
    ``registry`` is the service's own Prometheus registry: register your metrics there to have them
    served alongside.
    """

    def __init__(self, app: ASGIApp, settings: HttpSettings | None = None) -> None:
        if not callable(app):
            raise HttpServiceError(
                f"HttpService(app={app!r}): not an ASGI application; pass an async callable "
                "taking (scope, receive, send), such as a Starlette or FastAPI app"
            )
        self.app = app
        self.settings = settings if settings is not None else HttpSettings()
        self.name = "http"
        self._context: ServiceContext | None = None
        self._front: _Front | None = None
        self._requests = _Requests()
        self._metrics = _Metrics(self) if self.settings.metrics_path is not None else None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._done: anyio.Event | None = None  # uvicorn's serve() has returned
        self._failure = "uvicorn stopped before it was listening"
        self._error: BaseException | None = None
        self._stopping = False

    # -- what it shows ----------------------------------------------------------------------------

    @property
    def asgi(self) -> ASGIApp:
        """What uvicorn serves: the user's app behind the health, metrics and drain wrapper.

        Call it in-process (``httpx.ASGITransport(app=service.asgi)``) to test without a socket.
        """
        if self._front is None:
            self._front = _Front(self)
        return self._front

    @property
    def port(self) -> int:
        """The port bound (once started), else the configured one."""
        return self._port if self._port is not None else self.settings.port

    @property
    def url(self) -> str:
        """``http://host:port`` of this server."""
        return f"http://{_address(self.settings.host, self.port)}"

    @property
    def in_flight(self) -> int:
        """Requests being handled now (probes and metrics not counted)."""
        return len(self._requests)

    @property
    def drained(self) -> int:
        """Requests that finished normally after ``stop()`` began."""
        return self._requests.drained

    @property
    def cut_off(self) -> int:
        """Requests cut off by ``stop()`` because they outran its bound."""
        return self._requests.cut_off

    @property
    def registry(self) -> CollectorRegistry | None:
        """The Prometheus registry served at ``metrics_path`` (None when metrics are off)."""
        return self._metrics.registry if self._metrics is not None else None

    @property
    def status(self) -> AppState:
        """What ``/readyz`` reports: the application's state, or this server's when standalone."""
        if self._context is not None:
            readiness = self._context.readiness
            if readiness.state is AppState.READY and not readiness.ready:
                return AppState.STARTING  # a service is unhealthy or restarting
            return readiness.state
        if self._done is not None and self._done.is_set():
            return AppState.STOPPED
        if self._stopping:
            return AppState.SHUTTING_DOWN
        if self._server is None or not self._server.started:
            return AppState.STARTING
        return AppState.READY

    @property
    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200."""
        return self.status is AppState.READY

    def readiness_report(self) -> dict[str, Any]:
        """The ``/readyz`` details: the status and each service's state (no configuration)."""
        report: dict[str, Any] = {"status": self.status.value}
        if self._context is not None:
            services = self._context.services()
            if services:
                report["services"] = {name: view.state.value for name, view in services.items()}
            unhealthy = self._context.readiness.details()
            if unhealthy:
                report["unhealthy"] = unhealthy
        return report

    def _framework_attach(self, context: ServiceContext) -> None:
        """Called by the application before any service starts: readiness comes from it now on."""
        self._context = context
        self.name = context.name

    # -- start ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the socket, start uvicorn (and the app's lifespan); return once it accepts."""
        _require_asyncio()
        if self._task is not None:
            raise HttpServiceError(f"{self.name}: this HttpService was already started")
        import uvicorn

        settings = self.settings
        self._socket = sock = _listen(settings.host, settings.port, settings.backlog)
        self._port = int(sock.getsockname()[1])
        # access_log is applied through the protocol class (see _protocol), not Config, which
        # would silence the shared "uvicorn.access" logger for every server in the process
        config = uvicorn.Config(self.asgi, **self._uvicorn_options())
        self._done = done = anyio.Event()
        settled = anyio.Event()  # uvicorn is listening, or gave up
        self._server = server = _server_class()(config, settled.set)
        self._task = asyncio.create_task(
            self._serve(server, sock, settled, done), name=f"uvicorn {self.url}"
        )
        await settled.wait()
        if not server.started:
            raise HttpServiceError(
                f"{self.name}: the HTTP server for {self.url} did not start: {self._failure}"
            ) from self._error
        self._log().bind(url=self.url).info(f"serving HTTP on {self.url}")

    def _uvicorn_options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "host": s.host,
            "port": self.port,
            "loop": s.loop,
            "http": _protocol(s.http, access_log=s.access_log),
            "timeout_keep_alive": s.timeout_keep_alive,
            "backlog": s.backlog,
            "limit_concurrency": s.limit_concurrency,
            "proxy_headers": s.proxy_headers,
            "forwarded_allow_ips": s.forwarded_allow_ips,
            "root_path": s.root_path,
            "lifespan": "auto",  # the app's lifespan startup and shutdown run, if it has one
            "log_config": None,  # uvicorn logs propagate to the root logger, routed into loguru
            "timeout_graceful_shutdown": None,  # the stop bound applies, by the framework
        }

    async def _serve(
        self, server: uvicorn.Server, sock: socket.socket, settled: anyio.Event, done: anyio.Event
    ) -> None:
        try:
            await server.serve(sockets=[sock])
            if server.started:
                self._failure = "uvicorn's serve() returned"
        except SystemExit as exc:  # uvicorn's sys.exit(3): the app's lifespan startup failed
            self._failure = (
                "the ASGI app's lifespan startup failed (the error is logged above)"
                if exc.code == 3
                else f"uvicorn exited with code {exc.code}"
            )
        except Exception as exc:
            self._failure, self._error = f"{type(exc).__name__}: {exc}", exc
            self._log().opt(exception=exc).error(f"the HTTP server on {self.url} failed: {exc}")
        finally:
            settled.set()
            done.set()

    async def run(self) -> None:
        """While the application runs: if uvicorn stops serving by itself, fail (exit 1)."""
        if self._done is None:
            return
        await self._done.wait()
        if not self._stopping:
            raise HttpServiceError(
                f"{self.name}: the HTTP server on {self.url} stopped serving unexpectedly: "
                f"{self._failure}"
            )

    # -- stop -------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop accepting, drain the requests in flight, cut off what outruns the bound."""
        server, task, done = self._server, self._task, self._done
        if server is None or task is None or done is None:  # start never got to serve
            self._close_socket()
            return
        if self._stopping:
            await done.wait()
            return
        self._stopping = True
        requests = self._requests
        requests.draining = True
        began = anyio.current_time()
        if server.started:
            self._log().bind(in_flight=len(requests)).info(
                f"HTTP server on {self.url}: no new connections; "
                f"draining {len(requests)} request(s) in flight"
            )
        server.should_exit = True
        try:
            cut_at = _cut_off_at(began, anyio.current_effective_deadline())
            with anyio.CancelScope(deadline=cut_at):
                await done.wait()
            if not done.is_set():
                requests.cut_off_all()
                await done.wait()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await self._abort(server, task, done)
            raise
        finally:
            self._close_socket()
            if server.started:
                self._report(anyio.current_time() - began)
        if requests.cut_off:
            raise RequestsCutOffError(
                f"{self.name}: {requests.cut_off} request(s) still running "
                f"{anyio.current_time() - began:.2f} s into the drain were cut off to keep within "
                f"the stop bound; give them more time (services.{self.name}.stop_timeout, "
                "lifecycle.shutdown_timeout) or make them shorter",
                requests.cut_off,
            )

    async def _abort(
        self, server: uvicorn.Server, task: asyncio.Task[None], done: anyio.Event
    ) -> None:
        """The stop was cancelled (bound passed, or forced): cut off what is left, end the server."""
        server.force_exit = True  # uvicorn stops waiting and skips the lifespan shutdown
        self._requests.cut_off_all()
        for listener in getattr(server, "servers", ()):
            listener.close()
        for connection in list(server.server_state.connections):
            with contextlib.suppress(Exception):
                connection.shutdown()  # close when idle, else after the cut-off response
        task.cancel()
        with anyio.move_on_after(_ABORT_GRACE):
            await done.wait()
        if not done.is_set():
            self._log().warning(f"the HTTP server on {self.url} ignored cancellation; left behind")

    def _report(self, seconds: float) -> None:
        drained, cut_off = self._requests.drained, self._requests.cut_off
        log = self._log().bind(drained=drained, cut_off=cut_off, duration=round(seconds, 6))
        message = (
            f"HTTP server on {self.url} stopped in {seconds:.3f} s: "
            f"{drained} request(s) drained, {cut_off} cut off"
        )
        if cut_off:
            log.warning(message)
        else:
            log.info(message)

    def _close_socket(self) -> None:
        sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()

    def _log(self) -> Logger:
        from loguru import logger

        return logger.bind(logger_name="framework.http", service=self.name)


# -- the ASGI app uvicorn serves ------------------------------------------------------------------


class _Requests:
    """The requests being handled (their asyncio tasks), so that a drain can cut them off.

    Tasks rather than a cancel scope per request: HttpService runs only on asyncio, and a scope
    per request costs more than the rest of the front app together.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.cut: set[asyncio.Task[Any]] = set()
        self.draining = False
        self.drained = 0
        self.cut_off = 0

    def __len__(self) -> int:
        return len(self.tasks)

    def finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task in self.cut:
            self.cut.discard(task)
        elif self.draining:
            self.drained += 1

    def cut_off_all(self) -> None:
        for task in list(self.tasks - self.cut):
            self.cut.add(task)
            task.cancel()
            self.cut_off += 1


class _Front:
    """What uvicorn serves: the probes and metrics, then the user's app with each request tracked."""

    def __init__(self, service: HttpService) -> None:
        self.service = service
        self.app = service.app
        self.settings = service.settings
        self.requests = service._requests
        self.metrics = service._metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = _local_path(scope)
            if path == self.settings.livez_path:
                await _answer(send, 200, b"alive\n")
                return
            if path == self.settings.readyz_path:
                await self._readyz(send)
                return
            if self.metrics is not None and path == self.settings.metrics_path:
                await _answer(send, 200, *self.metrics.render())
                return
        if kind in ("http", "websocket"):
            await self._tracked(scope, receive, send)
        else:  # lifespan
            await self.app(scope, receive, send)

    async def _readyz(self, send: Send) -> None:
        service = self.service
        code = 200 if service.ready else 503
        if self.settings.readyz_details:
            body = json.dumps(service.readiness_report()).encode() + b"\n"
            await _answer(send, code, body, "application/json")
        else:
            await _answer(send, code, f"{service.status.value}\n".encode())

    async def _tracked(self, scope: Scope, receive: Receive, send: Send) -> None:
        status = 500  # what uvicorn answers when the app fails before responding
        responded = False

        async def send_watched(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
            await send(message)

        metrics, http = self.metrics, scope["type"] == "http"
        task = asyncio.current_task()
        assert task is not None
        requests = self.requests
        requests.tasks.add(task)
        if metrics is not None and http:
            metrics.in_flight.inc()
        began = time.perf_counter()
        try:
            try:
                await self.app(scope, receive, send_watched)
            except asyncio.CancelledError:
                if task not in requests.cut or task.uncancel() > 0:
                    raise  # not (only) our cut-off: the server itself is going away
                if http and not responded:
                    await _answer(send, 503, _CUT_OFF_BODY)
                    status = 503
        finally:
            requests.finished(task)
            if metrics is not None and http:
                metrics.observe(scope, status, time.perf_counter() - began)


async def _answer(
    send: Send, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8"
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"cache-control", b"no-store"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _local_path(scope: Scope) -> str:
    """The request path without the ``root_path`` prefix uvicorn includes in it."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path


# -- metrics --------------------------------------------------------------------------------------


class _Metrics:
    """Request metrics and lifecycle figures in a registry private to one service."""

    def __init__(self, service: HttpService) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled.", registry=self.registry
        )
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method and status.",
            ["method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method.",
            ["method"],
            registry=self.registry,
        )
        self.registry.register(_LifecycleCollector(service))

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = str(scope.get("method", ""))
        method = method if method in _METHODS else "other"  # bounded label values
        self.in_flight.dec()
        self.requests.labels(method, str(status)).inc()
        self.duration.labels(method).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LifecycleCollector:
    """The application's state and each service's start and stop time, read at each scrape."""

    def __init__(self, service: HttpService) -> None:
        self.service = service

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        context = self.service._context
        state, start, stop = self._families()
        current = self.service.status
        for value in AppState:
            state.add_metric([value.value], 1.0 if value is current else 0.0)
        yield state
        if context is None:
            return
        for name, view in context.services().items():
            if view.start_seconds is not None:
                start.add_metric([name], view.start_seconds)
            if view.stop_seconds is not None:
                stop.add_metric([name], view.stop_seconds)
        yield start
        yield stop
        yield from health_metrics(context.readiness.unhealthy, context.services())

    @staticmethod
    def _families() -> tuple[Any, Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(
                "framework_app_state",
                "The application's state: 1 for the current one.",
                labels=["state"],
            ),
            GaugeMetricFamily(
                "framework_service_start_seconds",
                "How long each service's start() took.",
                labels=["service"],
            ),
            GaugeMetricFamily(
                "framework_service_stop_seconds",
                "How long each service's stop() took.",
                labels=["service"],
            ),
        )


# -- uvicorn, embedded ----------------------------------------------------------------------------


@functools.cache
def _server_class() -> Callable[[uvicorn.Config, Callable[[], None]], uvicorn.Server]:
    """uvicorn's `Server`, made to live inside an application (built on first use)."""
    import uvicorn

    class EmbeddedServer(uvicorn.Server):
        """Leaves the signals to the application and says when it is listening."""

        def __init__(self, config: uvicorn.Config, on_listening: Callable[[], None]) -> None:
            super().__init__(config)
            self._on_listening = on_listening

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            # uvicorn would take SIGINT/SIGTERM over; the application handles them and calls stop()
            yield

        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets)
            self._on_listening()

    return EmbeddedServer


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise HttpServiceError(
            "HttpService needs the asyncio backend (uvicorn runs on asyncio); run the "
            "application with backend='asyncio' (the default; `framework run --backend asyncio`)"
        ) from None


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; `ListenError` saying what to change if not."""
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
        if exc.errno == errno.EADDRINUSE:
            hint = "stop the process using it, or set http.port to a free port (0 picks one)"
        elif exc.errno == errno.EACCES:
            hint = "ports below 1024 need privileges: set http.port to 1024 or above"
        else:
            hint = "set http.host to an address of this machine (127.0.0.1, 0.0.0.0, ::)"
        raise ListenError(
            f"cannot listen on {_address(host, port)}: {reason}; {hint}", exc.errno
        ) from exc
    return sock


def _protocol(name: str, *, access_log: bool) -> Any:
    """uvicorn's HTTP protocol class for ``name``; with access logging off for this server only.

    uvicorn decides per connection from the "uvicorn.access" logger having handlers, which the
    framework's logging gives it; ``Config(access_log=False)`` would silence that shared logger for
    every server in the process.
    """
    from uvicorn.config import HTTP_PROTOCOLS
    from uvicorn.importer import import_from_string

    base = import_from_string(HTTP_PROTOCOLS[name])
    if access_log:
        return base

    class Quiet(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = False

    return Quiet


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cut_off_at(now: float, deadline: float) -> float:
    """When to stop waiting for requests: the deadline less a reserve for what comes after."""
    if math.isinf(deadline):
        return math.inf
    return deadline - min(_RESERVE_MAX, _RESERVE_SHARE * max(0.0, deadline - now))
