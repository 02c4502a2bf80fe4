"""`Application`: the runner. It only orchestrates; each step lives in the module named for it.

One ``framework run``, top-down: load settings (`framework._config.load`) -> build the container
(`framework._runtime.container`) -> discover the graph (`framework._runtime.discovery`) -> set up logging
(`framework._runtime.logs`) -> create the services -> lifecycle start (`framework._engine.lifecycle`) -> wait for a
signal (`framework._runtime.signals`) or `request_shutdown` -> lifecycle stop -> report
(`framework._runtime.report`) -> flush the logs. `framework._runtime.watchdog` ends the process if the event loop
cannot.

Three ways to run one, with the same guarantees (every service whose start began is stopped, in
reverse, within its bounds; logs flushed last):

- ``app.run()``: blocking; installs signal handlers; returns the exit code.
- ``async with app.running(): ...``: started on enter, stopped on exit.
- ``await app.start(); ...; await app.stop()``: explicit; ``stop()`` is idempotent.
"""

from __future__ import annotations

import enum
import os
import signal
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import anyio
from dependency_injector import containers

from framework._compat import check_installed
from framework._config.load import load_app_settings, secrets_of
from framework._config.settings import Settings
from framework._config.timeouts import all_bounds, service_bounds
from framework._engine import timing
from framework._engine.detached import DetachedTasks
from framework._engine.errors import FrameworkError, StartupError
from framework._engine.events import Bound, Event, EventBus, EventHandler, RollingBack, takes
from framework._engine.exitcode import ExitCode
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle
from framework._engine.readiness import AppState, Readiness
from framework._engine.readiness_events import follow_lifecycle
from framework._engine.restart import RestartPolicy
from framework._engine.service import Service
from framework._engine.shutdown import left_behind
from framework._runtime import messages
from framework._runtime.container import build_container, create_services
from framework._runtime.context import ServiceContext, ServiceView
from framework._runtime.discovery import discover_graph, service_providers
from framework._runtime.health import HealthPoller
from framework._runtime.logs import LogSink, restore_fallback, setup_logging
from framework._runtime.messages import log_event, runner_log
from framework._runtime.report import final_report
from framework._runtime.signals import LoopHandle, SignalWatcher, keep_signals
from framework._runtime.systemd import WORKER_ENV, Notifier, notify_lifecycle, watchdog_loop
from framework._runtime.watchdog import Watchdog
from framework._runtime.wiring import unwire_container

__all__ = ("Application", "RunState", "ShutdownRequest")


class RunState(enum.StrEnum):
    """The runner's own state: ``new -> starting -> running -> stopping -> stopped``.

    A startup that fails goes from ``starting`` to ``stopped`` (after its rollback).
    """

    NEW = "new"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"


@dataclass(frozen=True)
class ShutdownRequest:
    """The first request to shut down wins: its exit code and reason."""

    exit_code: int
    reason: str


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
        check_installed()  # UnsupportedDependency: a package outside the range its adapter supports
        cls = type(self)
        if not isinstance(getattr(cls, "container_class", None), type):
            raise FrameworkError(
                f"{cls.__name__}.container_class is not set: name your DeclarativeContainer class"
            )
        declared = service_providers(self.container_class)
        self.loaded = load_app_settings(
            cls.settings_class, list(declared), config_dir, env, overrides, settings
        )
        self.settings = self.loaded.settings
        self.container = build_container(self.container_class, self.settings)
        self._providers = declared.of(self.container)
        self.graph: DependencyGraph = discover_graph(self._providers)
        self.readiness = Readiness()
        self.report_path = Path(report) if report is not None else None
        self.state = RunState.NEW
        self.lifecycle: Lifecycle | None = None
        self.exit_code: int | None = None
        # readiness moves first, so every other consumer sees it moved already
        self.bus = EventBus(follow_lifecycle(self.readiness), self._on_event, log_event)
        self._log: LogSink | None = None
        self._requested: ShutdownRequest | None = None
        self._signalled: signal.Signals | None = None  # by the signal's thread, at once
        self._shutdown: anyio.Event | None = None
        self._stopped: anyio.Event | None = None
        self._loop: LoopHandle | None = None
        self._watchdog: Watchdog | None = None  # inside run(): the process is ours to end
        self.health_poller: HealthPoller | None = None  # while running: each service's health()

    # -- configuration --------------------------------------------------------------------------

    def service_class(self, name: str) -> type[Service]:
        """The class service ``name``'s provider provides (nothing is instantiated)."""
        provides: type[Service] = self._providers[name].provides
        return provides

    def bounds(self, name: str) -> tuple[Bound, Bound]:
        """The (start, stop) bounds of a service: config > class attribute > lifecycle default."""
        return service_bounds(name, self.service_class(name), self.settings)

    # -- events ---------------------------------------------------------------------------------

    def subscribe(self, handler: EventHandler) -> None:
        """Receive every lifecycle event (a sync callable; keep it quick)."""
        self.bus.subscribe(handler)

    @takes(RollingBack)
    def _on_event(self, event: Event) -> None:
        if isinstance(event, RollingBack):
            self._arm(
                timing.exit_deadline(1, self.settings.lifecycle.shutdown_timeout),
                ExitCode.FAILURE,
                messages.ROLLBACK_OUTLIVED,
            )

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> None:
        """Set up logging, create the services and start them in dependency order.

        Raises `StartupError` after rolling back (and flushing the logs) if a start fails.
        """
        if self.state is not RunState.NEW:
            raise FrameworkError("this application was already started; create a new one")
        self.state = RunState.STARTING
        self._loop = LoopHandle.current()
        self._shutdown, self._stopped = anyio.Event(), anyio.Event()
        self._log = setup_logging(self.settings.logging, secrets_of(self.settings))
        if os.environ.get(WORKER_ENV):  # a supervisor's worker: every line names this process
            from framework._runtime.systemd import log_worker_pid

            log_worker_pid()
        messages.log_starting(type(self).__name__, self.graph, self.loaded)
        try:
            lifecycle = self.lifecycle = self._make_lifecycle()
        except StartupError:
            await self._finish(ExitCode.FAILURE)
            raise
        if self._requested is None and self._signalled is not None:  # while services were created
            self._on_signal(self._signalled, 1)  # (the loop had no turn to act on it)
        if self._requested is not None:
            await self._finish(ExitCode.OK)
            raise StartupError([], messages.ABORTED_BEFORE_START)
        try:
            await lifecycle.start(DetachedTasks())
        except StartupError as exc:
            clean = lifecycle.abort_reason is not None and not exc.errors
            await self._finish(ExitCode.OK if clean and not lifecycle.crashed else ExitCode.FAILURE)
            raise
        except BaseException:
            await self._finish(ExitCode.FAILURE)
            raise
        self.state = RunState.RUNNING
        self.health_poller = HealthPoller.polling(lifecycle, self.bus, self.settings.lifecycle)
        if self._requested is not None:  # requested while the last service was starting
            self._shutdown.set()

    def _make_lifecycle(self) -> Lifecycle:
        """Create the services, hand the built-ins their context, and the engine that runs them."""
        services = create_services(self.graph, self._providers)
        bounds = all_bounds(services, self.service_class, self.settings)
        lc, sections = self.settings.lifecycle, self.settings.services
        lifecycle = Lifecycle(
            services,
            self.graph,
            start_bounds={name: b[0] for name, b in bounds.items()},
            stop_bounds={name: b[1] for name, b in bounds.items()},
            startup_timeout=Bound(lc.startup_timeout, "lifecycle.startup_timeout"),
            shutdown_timeout=Bound(lc.shutdown_timeout, "lifecycle.shutdown_timeout"),
            on_crash=self._on_crash,
            bus=self.bus,
            restart={
                n: RestartPolicy.from_settings(s) for n, s in sections.items() if n in services
            },
            drain={
                n: s.drain_timeout
                for n, s in sections.items()
                if n in services and s.drain_timeout is not None
            },
        )
        views, app = self._service_views, type(self).__name__
        for name, service in services.items():
            attach = getattr(service, "_framework_attach", None)
            if callable(attach):  # built-in services learn their name and the readiness
                attach(ServiceContext(name, self.readiness, self.settings, views, app))
        return lifecycle

    def _service_views(self) -> dict[str, ServiceView]:
        if self.lifecycle is None:
            return {}
        return {
            name: ServiceView(r.service.state, r.start_duration, r.stop_duration, len(r.restarts))
            for name, r in self.lifecycle.records.items()
        }

    def _on_crash(self, name: str, error: BaseException) -> None:
        self._request(ExitCode.FAILURE, messages.crashed(name, error))

    # -- shutdown -------------------------------------------------------------------------------

    def request_shutdown(self, exit_code: int = 0, reason: str = "shutdown requested") -> None:
        """Ask the application to shut down; callable from any task or thread. The first wins."""
        loop = self._loop
        if loop is None or loop.thread == threading.get_ident():
            self._request(exit_code, reason)
        elif loop.call_soon(self._request, exit_code, reason) is not None:
            self._request(exit_code, reason)  # the loop has finished: nothing runs concurrently

    def _request(self, exit_code: int, reason: str) -> None:
        if self._requested is None:
            self._requested = ShutdownRequest(int(exit_code), reason)
        if self.lifecycle is not None:
            self.lifecycle.abort_start(reason)  # only acts while it is starting
        if self._shutdown is not None and self.state is RunState.RUNNING:
            self._shutdown.set()

    async def wait_for_shutdown(self) -> None:
        """Return once a shutdown was requested (signal, `request_shutdown`, a crash)."""
        if self._shutdown is None:
            raise FrameworkError("the application is not started")
        await self._shutdown.wait()

    def force(self, reason: str = "forced") -> None:
        """Cancel what is left of the shutdown (a second signal): remaining stops are cancelled."""
        self._request(ExitCode.FORCED, reason)  # aborts a startup in progress too
        if self.lifecycle is not None:
            self.lifecycle.force(reason)

    async def stop(self) -> int:
        """Stop every started service in reverse order; flush the logs; return the exit code.
        Idempotent: a second call waits for the first and returns the same code."""
        if self.state is RunState.NEW:
            return int(self.exit_code or ExitCode.OK)
        if self.state is RunState.STARTING:
            raise FrameworkError("cannot stop while starting: request_shutdown() aborts it")
        if self.state is not RunState.RUNNING:  # stopping or stopped: the first call's result
            assert self._stopped is not None
            await self._stopped.wait()
            return int(self.exit_code if self.exit_code is not None else ExitCode.FAILURE)
        self.state = RunState.STOPPING
        assert self.lifecycle is not None
        if self._requested is None:
            self._requested = ShutdownRequest(ExitCode.OK, "stop requested")
        # shielded (a cancelled `running()` body still stops in order); only force() cuts it short
        with anyio.CancelScope(shield=True):
            try:
                lc = self.settings.lifecycle
                await self.lifecycle.stop(self._requested.reason, delay=lc.shutdown_delay)
            except FrameworkError:
                pass  # each failure was logged as it happened and is in the timeline
        await self._finish(self._result_code())
        return int(self.exit_code if self.exit_code is not None else ExitCode.FAILURE)

    def _result_code(self) -> int:
        lifecycle = self.lifecycle
        if lifecycle is not None and lifecycle.forced:
            return ExitCode.FORCED
        if lifecycle is not None and (lifecycle.crashed or lifecycle.stop_errors):
            return ExitCode.FAILURE
        return self._requested.exit_code if self._requested else ExitCode.OK

    async def _finish(self, exit_code: int) -> None:
        """Report the timeline and flush the logs: every path ends here."""
        self.exit_code = exit_code
        with anyio.CancelScope(shield=True):
            # a startup that failed before the engine ran has no ShutdownFinished to follow
            if self.readiness.state is not AppState.STOPPED:
                self.readiness.set_state(AppState.STOPPED)
            # after the last stop: never leave modules wired to a stopped container
            unwire_container(self.container)
            self._report()
            if self._log is not None:
                log, self._log = self._log, None
                await log.flush(fallback=self._watchdog is None)  # run(): the final line stays last
            self.state = RunState.STOPPED
            if self._stopped is not None:
                self._stopped.set()

    def _report(self) -> None:
        reason = self._requested.reason if self._requested else ""
        code = int(self.exit_code if self.exit_code is not None else ExitCode.FAILURE)
        if self._log is not None and self._log.report_losses(runner_log()) and code == 0:
            code = self.exit_code = ExitCode.FAILURE  # lost log lines: a failure, said last
        final_report(self.lifecycle, code, reason, self.report_path)

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

        SIGTERM, SIGINT, SIGHUP or SIGQUIT: a graceful shutdown; a second one forces it (130)."""
        watchdog = self._watchdog = Watchdog(self._last_words, last_line=messages.last_line)
        notifier = Notifier.from_env()
        if notifier.enabled:  # systemd, or the framework's supervisor for a worker
            self.bus.subscribe(notify_lifecycle(notifier))
        try:
            backend = backend or self.backend
            from framework._runtime.loop import backend_options

            options = backend_options(backend, self.settings.http.loop)
            code = anyio.run(self._main, notifier, backend=backend, backend_options=options)
        finally:
            watchdog.disarm()
            restore_fallback()
        if self.lifecycle is not None and left_behind(self.lifecycle):
            # a stop stuck in a worker thread would hold the interpreter's exit until it returns;
            # the logs are flushed already, so end the process if it is still here shortly
            watchdog.exit_later(timing.LEFT_BEHIND_EXIT_AFTER, code)
        return code

    async def _main(self, notifier: Notifier) -> int:
        handle = LoopHandle.current()
        watcher = SignalWatcher(
            self._on_signal_thread,
            on_loop=(handle, self._on_signal),
            hand_off_failed=self._hand_off_failed,
        )
        with watcher:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(watchdog_loop, notifier)  # returns at once without a watchdog
                tasks.start_soon(keep_signals, watcher)
                try:
                    await self.start()
                except StartupError:
                    pass
                else:
                    await self.wait_for_shutdown()
                    self._arm(
                        timing.exit_deadline(1, self.settings.lifecycle.shutdown_timeout),
                        ExitCode.FAILURE,
                        messages.SHUTDOWN_OUTLIVED,
                    )
                    await self.stop()
                tasks.cancel_scope.cancel()
        return int(self.exit_code if self.exit_code is not None else ExitCode.FAILURE)

    def _on_signal_thread(self, sig: signal.Signals, count: int) -> None:
        """In the signal watcher's thread, at once (the loop may be blocked): arm the watchdog."""
        code = ExitCode.FAILURE if count == 1 else ExitCode.FORCED
        why = messages.SHUTDOWN_OUTLIVED if count == 1 else messages.forced_by(sig.name, count)
        self._arm(timing.exit_deadline(count, self.settings.lifecycle.shutdown_timeout), code, why)
        if count == 1:  # noted now: constructors and starts that do not wait give the loop no turn
            self._signalled, lifecycle = sig, self.lifecycle
            if lifecycle is not None:
                lifecycle.abort_reason = sig.name

    def _hand_off_failed(self, sig: signal.Signals, error: BaseException) -> None:
        """In the watcher's thread: the loop refused the signal; exit now rather than never."""
        runner_log().error(messages.hand_off_failed(sig.name, error))
        self._arm(0.0, ExitCode.FAILURE, messages.hand_off_failed(sig.name, error))

    def _on_signal(self, sig: signal.Signals, count: int) -> None:
        """On the loop: shut down, force; SIGUSR1 reopens the log file, SIGUSR2 logs a status."""
        log = runner_log()
        if sig is signal.SIGUSR1:
            log.info(messages.log_reopened(self._log.reopen() if self._log is not None else []))
        elif sig is signal.SIGUSR2:
            for name, rec in self.lifecycle.records.items() if self.lifecycle is not None else ():
                log.info(messages.status_line(name, rec.service))
        elif count == 1 and (self._requested is None or self._requested.reason != sig.name):
            log.info(messages.signal_received(sig.name))
            self._request(ExitCode.OK, sig.name)
            if self.state is RunState.STARTING:
                log.warning(messages.signal_during_startup(sig.name))
        elif count == 2:
            log.warning(messages.signal_again(sig.name))
            self.force(f"second {sig.name}")

    # -- the last resort ------------------------------------------------------------------------

    def _arm(self, seconds: float, code: int, why: str) -> None:
        """Inside ``run()``: exit after ``seconds`` even if the loop is stuck (or sooner)."""
        if self._watchdog is not None:
            self._watchdog.arm_within(seconds, code, why)

    def _last_words(self, code: int, why: str) -> None:
        runner_log().error(messages.exiting_now(why))
        self.exit_code = code
        try:
            self._report()
        finally:
            if self._log is not None:
                self._log.flush_sync()

    # -- CLI ------------------------------------------------------------------------------------

    @classmethod
    def main(cls, argv: list[str] | None = None) -> None:
        """CLI entry: ``--config-dir``, ``--env``, ``--set key=value``; runs; exits with the code."""
        from framework._process.launch import run_application

        sys.exit(run_application(cls, argv))
