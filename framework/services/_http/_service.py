"""`HttpService`: binds, starts the embedded uvicorn, reports readiness, drains on stop."""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
from typing import TYPE_CHECKING, Any

import anyio

from framework._config.settings import HttpSettings
from framework._engine.readiness import AppState, ShutdownNotice
from framework._engine.secrets import mask
from framework._engine.service import Service
from framework._runtime.heartbeat import count_requests, heartbeat_interval
from framework._runtime.systemd import take_inherited_socket
from framework.services._asyncio import require_asyncio
from framework.services._http._connections import protocol_classes
from framework.services._http._drain import DrainPlan, abort_connections, close_listeners
from framework.services._http._errors import (
    HttpServiceError,
    LifespanShutdownError,
    RequestsCutOffError,
)
from framework.services._http._front import ASGIApp, Front, Requests
from framework.services._http._loop import check_loop
from framework.services._http._metrics import Metrics
from framework.services._http._server import (
    address,
    close_responses,
    drain_times,
    listen,
    port_setting,
)

if TYPE_CHECKING:
    import uvicorn
    from loguru import Logger
    from prometheus_client import CollectorRegistry

    from framework._runtime.context import ServiceContext

__all__ = ("HttpService",)

# After a cancelled stop, how long (shielded) the server task is given to end once cancelled.
_ABORT_GRACE = 0.25
_UVICORN_TRACE = 5  # uvicorn's TRACE level: it then logs every ASGI message, wrapping send


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
        self._front: Front | None = None  # `asgi`: for ASGI test clients
        self._served: Front | None = None  # what the embedded uvicorn serves
        self._requests = Requests()
        self._metrics = Metrics(self) if self.settings.metrics_path is not None else None
        self._socket: socket.socket | None = None
        self._port: int | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._done: anyio.Event | None = None  # uvicorn's serve() has returned
        self._listening = False  # uvicorn's startup is over and it accepts connections
        self._failure = "uvicorn stopped before it was listening"
        self._error: BaseException | None = None
        self._stopping = False
        self._notice = ShutdownNotice()  # standalone: set when stop() begins
        self._plan = DrainPlan()

    # -- what it shows ----------------------------------------------------------------------------

    @property
    def asgi(self) -> ASGIApp:
        """What uvicorn serves: the user's app behind the health, metrics and drain wrapper.

        Call it in-process (``httpx.ASGITransport(app=service.asgi)``) to test without a socket.
        """
        if self._front is None:
            self._front = Front(self)
        return self._front

    @property
    def port(self) -> int:
        """The port bound (once started), else the configured one."""
        return self._port if self._port is not None else self.settings.port

    @property
    def url(self) -> str:
        """``http://host:port`` of this server."""
        return f"http://{address(self.settings.host, self.port)}"

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
    def notice(self) -> ShutdownNotice:
        """The shutdown notice given to the app in ``scope["extensions"]["framework.shutdown"]``.

        The application's (set at the first moment of shutdown, when ``/readyz`` turns 503), or,
        standalone, the service's own (set when ``stop()`` begins).
        """
        if self._context is not None:
            return self._context.readiness.shutdown
        return self._notice

    @property
    def status(self) -> AppState:
        """The application's state, or this server's when standalone."""
        if self._context is not None:
            return self._context.readiness.state
        if self._done is not None and self._done.is_set():
            return AppState.STOPPED
        if self._stopping:
            return AppState.SHUTTING_DOWN
        if not self._listening:
            return AppState.STARTING
        return AppState.READY

    @property
    def ready(self) -> bool:
        """Whether ``/readyz`` answers 200: the application is ready, and no service is unhealthy
        or restarting."""
        if self._context is not None:
            return self._context.readiness.ready
        return self.status is AppState.READY

    def readiness_report(self) -> dict[str, Any]:
        """The ``/readyz`` body: ``status`` (``ready``, ``starting``, ``shutting down``,
        ``restarting`` or ``unhealthy``, naming the services concerned and why); with
        ``http.readyz_details`` also each service's state (never configuration)."""
        if self._context is None:
            return {"status": self.status.value}
        report: dict[str, Any] = self._context.readiness.why()
        if self.settings.readyz_details:
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
        if self._front is not None:
            self._front.notice = context.readiness.shutdown

    # -- start ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the socket, start uvicorn (and the app's lifespan); return once it accepts."""
        require_asyncio("HttpService", "uvicorn runs on asyncio", HttpServiceError)
        check_loop(self.settings.loop, self.name)
        if self._task is not None:
            raise HttpServiceError(f"{self.name}: this HttpService was already started")
        import uvicorn

        from framework._compat.uvicorn import request_tasks, requests_served, server_class
        from framework.services._instruments import instrument_asgi

        settings = self.settings
        # a socket passed by systemd socket activation or the framework's supervisor, else our own
        inherited = take_inherited_socket(settings.host, settings.port, self.name)
        where = port_setting(self._context and self._context.settings, settings)
        self._socket = sock = inherited or listen(
            settings.host, settings.port, settings.backlog, where
        )
        self._port = int(sock.getsockname()[1])
        self._served = front = Front(self, served=True)
        front.app = instrument_asgi(front.app)  # a server span per request while telemetry runs
        # protocol classes of the service's own: they track its connections, and apply
        # access_log to this server alone (see protocol_classes)
        http, http_class, ws_class = protocol_classes(
            settings.http, access_log=settings.access_log, connections=self._plan.connections
        )
        options = self._uvicorn_options()
        options.update(http=http_class, **({"ws": ws_class} if ws_class is not None else {}))
        config = uvicorn.Config(front, **options)
        self._done = done = anyio.Event()
        settled = anyio.Event()  # uvicorn is listening, or gave up
        self._plan.listener = sock

        def started(listening: bool) -> None:
            self._listening = listening
            settled.set()

        self._server = server = server_class()(config, started, self._plan.run)
        if heartbeat_interval() is not None:  # a supervisor's worker: it reports what it served
            count_requests(functools.partial(requests_served, server))
        self._task = asyncio.create_task(
            self._serve(server, sock, settled, done), name=f"uvicorn {self.url}"
        )
        self._requests.server_tasks = request_tasks(server)
        if logging.getLogger("uvicorn.error").getEffectiveLevel() <= _UVICORN_TRACE:
            front.watch = True  # uvicorn wraps send in its message logger
        self.notice.add_callback(functools.partial(self._shutdown_began, front))
        await settled.wait()
        if not self._listening:
            raise HttpServiceError(
                f"{self.name}: the HTTP server for {self.url} did not start: {self._failure}"
            ) from self._error
        loop = type(asyncio.get_running_loop()).__module__.partition(".")[0]
        self._log().bind(url=self.url, loop=loop, http=http).info(f"serving HTTP on {self.url}")

    def _shutdown_began(self, front: Front) -> None:
        """Every response from now on says ``Connection: close``: those already begun through
        their uvicorn cycle, later ones through the front app watching their ``send``."""
        front.watch = True
        close_responses(self._plan.connections)

    def _uvicorn_options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "host": s.host,
            "port": self.port,
            "loop": s.loop,
            "timeout_keep_alive": s.timeout_keep_alive,
            "backlog": s.backlog,
            # limit_concurrency is enforced by the front app, after the probes (see Front)
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
            if self._listening:
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
        """While the application runs: if uvicorn stops serving by itself, fail (exit 1).
        Returns at the first moment of shutdown (its stop drains the server)."""
        done, stopping = self._done, self.stopping
        if done is None:
            return
        async with anyio.create_task_group() as tg:

            async def until_stopping() -> None:
                await stopping.wait()
                tg.cancel_scope.cancel()

            tg.start_soon(until_stopping)
            await done.wait()
            tg.cancel_scope.cancel()
        if not self._stopping and not stopping.is_set():
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
        self._notice.set()
        if self._served is not None:
            self._served.watch = True  # requests from now on are counted as they finish
        requests = self._requests
        requests.begin_drain()
        began = anyio.current_time()
        cut_at, self._plan.abort_at = drain_times(began, anyio.current_effective_deadline())
        self._plan.cut_at = cut_at
        try:
            if self._listening:
                await self._plan.close_listeners(server)  # now, not at uvicorn's next tick
                self._log().bind(in_flight=len(requests)).info(
                    f"HTTP server on {self.url}: no new connections; "
                    f"draining {len(requests)} request(s) in flight"
                )
            server.should_exit = True
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
            if self._listening:
                self._report(anyio.current_time() - began)
        failed = self._served.lifespan_failed if self._served is not None else None
        if failed is not None:
            raise LifespanShutdownError(
                f"{self.name}: the ASGI app's lifespan shutdown failed ({mask(failed)}): what it "
                "does after `yield` (flushing, closing clients) did not finish"
            )
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
        from framework._compat.uvicorn import shut_down

        server.force_exit = True  # uvicorn stops waiting and skips the lifespan shutdown
        self._requests.cut_off_all()
        close_listeners(server, None)
        connections = self._plan.connections
        for protocol in connections.protocols():
            shut_down(protocol)  # close when idle, else after the cut-off response
        task.cancel()
        with anyio.move_on_after(_ABORT_GRACE):
            await done.wait()
            for _ in range(100):  # the cut-off answers go out; bounded by _ABORT_GRACE too
                if not connections:
                    break
                await anyio.sleep(0.005)
        abort_connections(connections)  # what a client does not read must not hold the stop
        if not done.is_set():
            self._log().warning(f"the HTTP server on {self.url} ignored cancellation; left behind")

    def _report(self, seconds: float) -> None:
        drained, cut_off = self._requests.drained, self._requests.cut_off
        aborted = self._plan.aborted
        log = self._log().bind(
            drained=drained, cut_off=cut_off, aborted=aborted, duration=round(seconds, 6)
        )
        message = (
            f"HTTP server on {self.url} stopped in {seconds:.3f} s: "
            f"{drained} request(s) drained, {cut_off} cut off"
        )
        if aborted:
            message += (
                f"; {aborted} connection(s) aborted at the stop bound "
                "(a client not reading its response, or a websocket not closing)"
            )
        if cut_off or aborted:
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
