"""`Application`: loads settings, wires the container, runs the lifecycle, handles signals.

Three ways to run one, with the same guarantees (every service whose start began is stopped, in
reverse, within its bounds; logs flushed last):

- ``app.run()``: blocking; installs signal handlers; returns the exit code.
- ``async with app.running(): ...``: started on enter, stopped on exit.
- ``await app.start(); ...; await app.stop()``: explicit; ``stop()`` is idempotent.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, ClassVar

import anyio
import anyio.lowlevel
from anyio.abc import TaskStatus
from dependency_injector import containers, providers
from dependency_injector.errors import NonCopyableArgumentError

from framework._detached import DetachedTasks
from framework.config import LoadedSettings, load_settings, secrets_of, unknown_services
from framework.context import ServiceContext, ServiceView
from framework.discovery import discover_graph, service_providers
from framework.errors import ConfigError, FrameworkError, StartupError
from framework.events import (
    Bound,
    Event,
    EventHandler,
    Outcome,
    RollingBack,
    ShutdownStarted,
)
from framework.exitcode import ExitCode
from framework.graph import DependencyGraph
from framework.lifecycle import Lifecycle, LifecycleState
from framework.readiness import AppState, Readiness
from framework.report import render_timeline, timeline, write_report
from framework.service import Service
from framework.services.logging import LogSink, log_event, setup_logging
from framework.settings import Settings

__all__ = ("Application",)

# Each starts the graceful shutdown; a second one (any of them) forces it. SIGHUP and SIGQUIT would
# otherwise kill the process on the spot, losing in-flight requests and the last log lines.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# After a second signal, how long the cancelled stops get before the process exits regardless.
FORCED_EXIT_AFTER = 0.5
# After run() returned, how long a stop left behind may hold the process before it is ended.
LEFT_BEHIND_EXIT_AFTER = 0.5
# Past shutdown_timeout, how long a shutdown stuck in code that ignores cancellation is
# waited for before the process exits regardless (exit 1).
HARD_EXIT_MARGIN = 2.0


class Application:
    """Subclass with ``container_class`` (and optionally ``settings_class``), then ``run()``.

    ``App(config_dir="config", env="prod", overrides={"lifecycle.shutdown_timeout": 5})`` loads the
    settings (raising `ConfigError` with every problem) and discovers the services and their order
    (raising `DependencyCycleError` on a cycle) without starting or instantiating anything.
    """

    container_class: ClassVar[type[containers.DeclarativeContainer]]
    settings_class: ClassVar[type[Settings]] = Settings
    backend: ClassVar[str] = "asyncio"
    """The anyio backend ``run()`` uses: ``asyncio`` or ``trio`` (built-in services need asyncio)."""

    def __init__(
        self,
        config_dir: str | os.PathLike[str] | None = None,
        env: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        *,
        settings: Settings | None = None,
        report: str | os.PathLike[str] | None = None,
    ) -> None:
        cls = type(self)
        if not isinstance(getattr(cls, "container_class", None), type):
            raise FrameworkError(
                f"{cls.__name__}.container_class is not set: name your DeclarativeContainer class"
            )
        names = list(service_providers(cls.container_class))
        if settings is not None:
            self.loaded: LoadedSettings[Settings] = LoadedSettings(settings)
            problems = unknown_services(settings.services, names, {})
            if problems:
                raise ConfigError(problems)
        else:
            self.loaded = load_settings(
                self.settings_class,
                config_dir=config_dir,
                env=env,
                overrides=overrides,
                services=names,
            )
        self.settings = self.loaded.settings
        try:
            self.container = self.container_class()
        except NonCopyableArgumentError as exc:
            raise FrameworkError(
                f"{self.container_class.__name__}: {exc}; wrap the object in providers.Object(...) "
                "(dependency-injector copies plain arguments when it creates the container)"
            ) from None
        if "settings" in self.container.providers:
            self.container.settings.override(providers.Object(self.settings))
        self._providers = service_providers(self.container)
        self.graph: DependencyGraph = discover_graph(self._providers)
        self.readiness = Readiness()
        self.report_path = Path(report) if report is not None else None
        self.lifecycle: Lifecycle | None = None
        self.exit_code: int | None = None
        self._handlers: list[EventHandler] = []
        self._log: LogSink | None = None
        self._stop_scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None
        self._shutdown: anyio.Event | None = None
        self._token: anyio.lowlevel.EventLoopToken | None = None
        self._loop_thread: int | None = None
        self._requested: tuple[int, str] | None = None
        self._crashed = False
        self._forced = False
        self._aborted = False
        self._watchdog: threading.Timer | None = None
        self._in_run = False  # inside run(): the process is ours to end

    # -- configuration --------------------------------------------------------------------------

    def bounds(self, name: str) -> tuple[Bound, Bound]:
        """The (start, stop) bounds of a service: config > class attribute > lifecycle default."""
        section = self.settings.service(name)
        cls = self._providers[name].provides
        lifecycle = self.settings.lifecycle
        out = []
        for phase, default in (
            ("start", lifecycle.start_timeout),
            ("stop", lifecycle.stop_timeout),
        ):
            key = f"{phase}_timeout"
            if getattr(section, key) is not None:
                out.append(Bound(getattr(section, key), f"services.{name}.{key}"))
            elif getattr(cls, key, None) is not None:
                out.append(Bound(float(getattr(cls, key)), f"{cls.__name__}.{key}"))
            else:
                out.append(Bound(default, f"lifecycle.{key}"))
        return out[0], out[1]

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        """Receive every lifecycle event (a sync callable; keep it quick)."""
        self._handlers.append(handler)

    def _emit(self, event: Event) -> None:
        if isinstance(event, RollingBack) and self._in_run:
            self._arm(
                self.settings.lifecycle.shutdown_timeout + HARD_EXIT_MARGIN,
                ExitCode.FAILURE,
                "the rollback outlived lifecycle.shutdown_timeout",
            )
        log_event(event)
        for handler in self._handlers:
            handler(event)

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up logging, create the services and start them in dependency order.

        Raises `StartupError` after rolling back (and flushing the logs) if a start fails.
        """
        if self.lifecycle is not None or self._log is not None:
            raise FrameworkError("this application was already started; create a new one")
        self._token = anyio.lowlevel.current_token()
        self._loop_thread = threading.get_ident()
        self._shutdown = anyio.Event()
        self._stopped = anyio.Event()
        self._log = setup_logging(self.settings.logging, secrets_of(self.settings))
        from loguru import logger

        layers = max(self.graph.layer.values(), default=-1) + 1
        logger.info(
            f"starting {type(self).__name__}: {len(self.graph)} service(s) in {layers} layer(s)"
            + (f", env {self.loaded.env}" if self.loaded.env else "")
        )
        try:
            services = self._create_services()
        except StartupError:
            self.exit_code = ExitCode.FAILURE
            await self._finish()
            raise
        start_bounds, stop_bounds = {}, {}
        for name in services:
            start_bounds[name], stop_bounds[name] = self.bounds(name)
        lifecycle = self.lifecycle = Lifecycle(
            services,
            self.graph,
            start_bounds=start_bounds,
            stop_bounds=stop_bounds,
            startup_timeout=Bound(
                self.settings.lifecycle.startup_timeout, "lifecycle.startup_timeout"
            ),
            shutdown_timeout=Bound(
                self.settings.lifecycle.shutdown_timeout, "lifecycle.shutdown_timeout"
            ),
            on_event=self._emit,
            on_crash=self._on_crash,
        )
        for name, service in services.items():
            attach = getattr(service, "_framework_attach", None)
            if callable(attach):  # built-in services learn their name and the readiness
                attach(ServiceContext(name, self.readiness, self.settings, self._service_views))
        if self._requested is not None:  # a signal arrived while services were being created
            self.exit_code = ExitCode.OK
            await self._finish()
            raise StartupError([], "startup aborted before any service started")
        try:
            await lifecycle.start(DetachedTasks())
        except StartupError as exc:
            clean = self._aborted and not exc.errors and not self._crashed
            self.exit_code = ExitCode.OK if clean else ExitCode.FAILURE
            await self._finish()
            raise
        except BaseException:
            self.exit_code = ExitCode.FAILURE
            await self._finish()
            raise
        self.readiness.set_state(AppState.READY)
        if self._requested is not None:  # requested while the last service was starting
            self._shutdown.set()

    def _create_services(self) -> dict[str, Service]:
        from loguru import logger

        services: dict[str, Service] = {}
        for name in self.graph.order:
            try:
                service = self._providers[name]()
            except Exception as exc:
                message = f"service {name!r} could not be created: {type(exc).__name__}: {exc}"
                logger.opt(exception=exc).error(message)
                raise StartupError([], message) from exc
            if not isinstance(service, Service):
                message = (
                    f"service {name!r}: its provider returned {type(service).__name__}, not a "
                    "Service; an override must provide a Service too"
                )
                logger.error(message)
                raise StartupError([], message)
            services[name] = service
        return services

    def _service_views(self) -> dict[str, ServiceView]:
        if self.lifecycle is None:
            return {}
        return {
            name: ServiceView(rec.service.state, rec.start_duration, rec.stop_duration)
            for name, rec in self.lifecycle.records.items()
        }

    def _on_crash(self, name: str, error: BaseException) -> None:
        self._crashed = True
        self._request(
            ExitCode.FAILURE, f"service {name!r} crashed: {type(error).__name__}: {error}"
        )

    # -- shutdown -------------------------------------------------------------------------------

    def request_shutdown(self, exit_code: int = 0, reason: str = "shutdown requested") -> None:
        """Ask the application to shut down; callable from any task or thread. The first wins."""
        if self._token is None or self._loop_thread == threading.get_ident():
            self._request(exit_code, reason)
        else:
            import anyio.from_thread  # here, not at the top: it costs ~20 ms of import time

            anyio.from_thread.run_sync(self._request, exit_code, reason, token=self._token)

    def _request(self, exit_code: int, reason: str) -> None:
        if self._requested is None:
            self._requested = (int(exit_code), reason)
        lifecycle = self.lifecycle
        if lifecycle is not None and lifecycle.state is LifecycleState.STARTING:
            self._aborted = True
            lifecycle.abort_start(reason)
        if self._shutdown is not None and self.readiness.state is AppState.READY:
            self._shutdown.set()

    async def wait_for_shutdown(self) -> None:
        """Return once a shutdown was requested (signal, `request_shutdown`, a crash)."""
        if self._shutdown is None:
            raise FrameworkError("the application is not started")
        await self._shutdown.wait()

    def force(self, reason: str = "forced") -> None:
        """Cancel what is left of the shutdown (a second signal): remaining stops are cancelled."""
        self._forced = True
        self._request(ExitCode.FORCED, reason)  # aborts a startup in progress too
        if self._stop_scope is not None:
            self._stop_scope.cancel()

    async def stop(self) -> int:
        """Stop every started service in reverse order; flush the logs; return the exit code.

        Idempotent: a second call waits for the first and returns the same code.
        """
        if self._stopped is None:  # never started
            return int(self.exit_code or ExitCode.OK)
        if self.exit_code is not None and self._log is None:
            return self.exit_code
        if self._stop_scope is not None:
            await self._stopped.wait()
            return int(self.exit_code or 0)
        from loguru import logger

        assert self.lifecycle is not None
        self.readiness.set_state(AppState.SHUTTING_DOWN)
        if self._requested is None:
            self._requested = (ExitCode.OK, "stop requested")
        reason = self._requested[1]
        delay = self.settings.lifecycle.shutdown_delay
        began = anyio.current_time()
        self.lifecycle.emit(ShutdownStarted(reason))  # the first moment: readiness is 503 now
        self._stop_scope = anyio.CancelScope()
        # shielded from outside cancellation (a cancelled `running()` body still stops in order);
        # only force() cuts it short
        with anyio.CancelScope(shield=True), self._stop_scope:
            if delay > 0 and not self._forced:
                logger.info(f"shutting down ({reason}): not ready; serving for {delay:g} s more")
                await anyio.sleep(delay)
            # the delay is part of the shutdown budget: the stops get what is left of it
            left = self.settings.lifecycle.shutdown_timeout - (anyio.current_time() - began)
            try:
                await self.lifecycle.stop(reason, budget=max(0.0, left), announce=False)
            except FrameworkError:
                pass  # each failure was logged as it happened and is in the timeline
        self.exit_code = self._result_code()
        await self._finish()
        return self.exit_code

    def _result_code(self) -> int:
        if self._forced:
            return ExitCode.FORCED
        lifecycle = self.lifecycle
        if self._crashed or (lifecycle is not None and lifecycle.stop_errors):
            return ExitCode.FAILURE
        return self._requested[0] if self._requested else ExitCode.OK

    async def _finish(self) -> None:
        """Report the timeline and flush the logs: every path ends here."""
        if self.lifecycle is not None:
            for rec in self.lifecycle:  # run() bodies whose stop never came (forced)
                if rec.run_scope is not None:
                    rec.run_scope.cancel()
        with anyio.CancelScope(shield=True):
            self.readiness.set_state(AppState.STOPPED)
            self._report()
            if self._log is not None:
                log, self._log = self._log, None
                await log.flush()
            if self._stopped is not None:
                self._stopped.set()

    def _report(self) -> None:
        from loguru import logger

        entries = timeline(self.lifecycle) if self.lifecycle is not None else []
        reason = self._requested[1] if self._requested else ""
        code = int(self.exit_code if self.exit_code is not None else ExitCode.FAILURE)
        logger.bind(exit_code=code).info(render_timeline(entries) + f"\nexit code {code}")
        if self.report_path is not None:
            try:
                write_report(self.report_path, entries, code, reason)
            except OSError as exc:
                logger.error(f"cannot write the report to {self.report_path}: {exc}")

    # -- running --------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[Application]:
        """Start on enter, stop on exit (also when the body raises or is cancelled)."""
        await self.start()
        try:
            yield self
        finally:
            await self.stop()  # shields itself

    def run(self, *, backend: str | None = None) -> int:
        """Start, wait for a signal or `request_shutdown`, stop; return the exit code.

        SIGTERM, SIGINT, SIGHUP or SIGQUIT shuts down gracefully; a second one forces the shutdown
        (exit 130).
        """
        try:
            backend = backend or self.backend
            code = anyio.run(self._main, backend=backend, backend_options=self._loop(backend))
        finally:
            self._disarm()
        if self._left_behind():
            # a stop stuck in a worker thread would hold the interpreter's exit until it returns;
            # the logs are flushed already, so end the process if it is still here shortly
            _daemon_timer(LEFT_BEHIND_EXIT_AFTER, _exit_now, code)
        return code

    def _loop(self, backend: str) -> dict[str, Any]:
        """On asyncio, uvloop when ``http.loop`` allows it (uvicorn serves on this loop)."""
        if backend != "asyncio":
            return {}
        from framework.services.http._loop import loop_factory

        factory = loop_factory(self.settings.http.loop)
        return {"loop_factory": factory} if factory is not None else {}

    def _left_behind(self) -> bool:
        """Whether a stop was given up on (timed out, or cancelled by force) and may still run."""
        if self.lifecycle is None:
            return False
        given_up = (Outcome.TIMED_OUT, Outcome.CANCELLED)
        return any(rec.stop_outcome in given_up for rec in self.lifecycle)

    async def _main(self) -> int:
        self._in_run = True
        async with anyio.create_task_group() as signals:
            await signals.start(self._watch_signals)
            try:
                await self.start()
            except StartupError:
                pass
            else:
                assert self._shutdown is not None
                await self._shutdown.wait()
                self._arm(
                    self.settings.lifecycle.shutdown_timeout + HARD_EXIT_MARGIN,
                    ExitCode.FAILURE,
                    "the shutdown outlived lifecycle.shutdown_timeout",
                )
                await self.stop()
            signals.cancel_scope.cancel()
        return int(self.exit_code if self.exit_code is not None else ExitCode.FAILURE)

    async def _watch_signals(self, *, task_status: TaskStatus[None]) -> None:
        if threading.current_thread() is not threading.main_thread():
            task_status.started()  # signals can only be handled in the main thread
            return
        previous = {sig: signal.getsignal(sig) for sig in SIGNALS}
        try:
            with anyio.open_signal_receiver(*SIGNALS) as received:
                task_status.started()
                count = 0
                async for sig in received:
                    count += 1
                    self._on_signal(signal.Signals(sig), count)
        finally:
            for sig, handler in previous.items():
                if handler is not None:
                    signal.signal(sig, handler)

    def _on_signal(self, sig: signal.Signals, count: int) -> None:
        from loguru import logger

        if count == 1:
            logger.info(f"received {sig.name}: shutting down gracefully")
            self._request(ExitCode.OK, sig.name)
            if self.readiness.state is AppState.STARTING:
                logger.warning(f"{sig.name} during startup: aborting and rolling back")
            return
        if count == 2:
            logger.warning(f"received {sig.name} again: forcing the shutdown")
            self.force(f"second {sig.name}")
            self._arm(FORCED_EXIT_AFTER, ExitCode.FORCED, f"second {sig.name}")
            return
        self._hard_exit(ExitCode.FORCED, f"{sig.name} received {count} times")

    # -- the last resort ------------------------------------------------------------------------

    def _arm(self, seconds: float, code: int, why: str) -> None:
        """Exit the process after ``seconds`` even if the event loop is stuck; logs flushed first."""
        self._disarm()
        self._watchdog = _daemon_timer(seconds, self._hard_exit, code, why)

    def _disarm(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _hard_exit(self, code: int, why: str) -> None:
        from loguru import logger

        logger.error(f"exiting now ({why}); stops still running were abandoned")
        self.exit_code = code
        try:
            self._report()
        finally:
            if self._log is not None:
                self._log.flush_sync()
            _exit_now(code)

    # -- CLI ------------------------------------------------------------------------------------

    @classmethod
    def main(cls, argv: list[str] | None = None) -> None:
        """CLI entry: ``--config-dir``, ``--env``, ``--set key=value``; runs; exits with the code."""
        from framework.cli import run_application

        sys.exit(run_application(cls, argv))


def _daemon_timer(seconds: float, function: Any, *args: Any) -> threading.Timer:
    """A started timer thread that does not keep the process alive."""
    timer = threading.Timer(seconds, function, args)
    timer.daemon = True
    timer.start()
    return timer


def _exit_now(code: int) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
