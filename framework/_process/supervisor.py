"""The supervisor: N worker processes on shared listening sockets, replaced, rolled, stopped.

``framework run module:App --workers N`` (or ``process.workers``) runs `supervise`: it loads the
settings and the graph (starting and creating no service), binds every HttpService's socket once
(or takes it from systemd's socket activation) and starts N workers, each the whole application on
those sockets: one accept queue shared by all. It then acts on signals:

- SIGTERM, SIGINT, SIGQUIT: every worker gets SIGTERM at once; exit 0 if all exit 0, else 1. A
  second one forwards a second SIGTERM (each worker forces its shutdown) and exits 130. The
  supervisor never outlives ``lifecycle.shutdown_timeout`` + 2 s after the first signal.
- SIGHUP: a rolling restart, one worker at a time: a new worker is started (the code re-imported,
  the configuration re-read); once it reports ``READY=1`` the old one gets SIGTERM and is waited
  for. A new worker that exits or is not ready within ``process.ready_timeout`` is killed, the old
  workers keep serving and the restart stops there.
- A worker that exits unexpectedly is replaced after ``process.restart_backoff`` (doubling up to
  ``process.restart_backoff_max`` while replacements keep dying).

Under systemd (``NOTIFY_SOCKET``) the supervisor itself sends ``READY=1`` once every worker is
ready, ``RELOADING=1`` during a rolling restart, ``STOPPING=1`` and ``WATCHDOG=1``.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any

from framework._engine.exitcode import ExitCode
from framework._process.heartbeat import all_in_time, beat_interval, end_hung, silence
from framework._process.listeners import Listener, bind_listeners, http_listen_settings
from framework._process.recycle import Recycler
from framework._process.workers import Pool, Worker
from framework._runtime.signals import handlers_taken
from framework._runtime.systemd import Notifier, log_worker_pid

if TYPE_CHECKING:
    from loguru import Logger

    from framework._config.settings import ProcessSettings
    from framework._runtime.application import Application

__all__ = ("Supervisor", "supervise", "workers_wanted")

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT)
# Passed on to every worker: SIGUSR1 reopens log files, SIGUSR2 logs a status snapshot.
FORWARDED = (signal.SIGUSR1, signal.SIGUSR2)
# SIGCHLD only wakes the loop, so a worker's exit is seen at once.
SIGNALS = (*STOP_SIGNALS, signal.SIGHUP, *FORWARDED, signal.SIGCHLD)
# After the first signal, the supervisor kills what is left and exits by shutdown_timeout + this.
EXIT_MARGIN = 1.8
# After a second signal, how long the workers get to force their own shutdown before SIGKILL.
FORCE_GRACE = 1.0
# How often worker messages and exits are looked at (signals wake the loop at once).
TICK = 0.05


def supervise(
    app: Application,
    command: Sequence[str],
    *,
    workers: int | None = None,
    prepare: Callable[[Supervisor], None] | None = None,
) -> int:
    """Run ``workers`` copies of ``command`` on ``app``'s HTTP sockets until a signal ends them.

    ``app`` is built (settings loaded, graph checked) but not started; ``command`` is what each
    worker runs (`framework._process.workers.worker_command`). Returns the exit code. The caller has
    reported configuration errors already (exit 78); a socket that cannot be bound is logged and
    gives exit 1. ``prepare`` is called with the supervisor before it starts its workers (the dev
    loop starts its file watcher there).
    """
    from framework._config.load import secrets_of
    from framework.services._logging import setup_logging

    settings = app.settings
    count = settings.process.workers if workers is None else workers
    sink = setup_logging(settings.logging, secrets_of(settings))
    log_worker_pid()
    log = _logger()
    try:
        try:
            listeners = bind_listeners(http_listen_settings(app))
        except OSError as exc:
            log.error(f"{exc}; no worker was started")
            return ExitCode.FAILURE
        supervisor = Supervisor(
            command,
            listeners,
            workers=max(1, count),
            process=settings.process,
            shutdown_timeout=settings.lifecycle.shutdown_timeout,
        )
        if prepare is not None:
            prepare(supervisor)
        try:
            return supervisor.run()
        finally:
            for listener in listeners:
                listener.sock.close()
    finally:
        sink.flush_sync()


def workers_wanted(app: Application, cli_workers: int | None = None) -> int:
    """How many workers ``framework run`` supervises: ``--workers``, else ``process.workers``.

    0 (run the application in this process) inside a worker, whatever the settings say.
    """
    from framework._runtime.systemd import worker_slot

    if worker_slot() is not None:
        return 0
    return app.settings.process.workers if cli_workers is None else max(0, cli_workers)


class Supervisor:
    """Runs the workers and acts on signals; `run` returns the exit code (see the module doc)."""

    def __init__(
        self,
        command: Sequence[str],
        listeners: Sequence[Listener],
        *,
        workers: int,
        process: ProcessSettings,
        shutdown_timeout: float,
        notifier: Notifier | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.notifier = notifier if notifier is not None else Notifier.from_env()
        self.pool = Pool(
            command,
            listeners,
            workers,
            process,
            dict(os.environ if environ is None else environ),
            _logger(),
        )
        self.shutdown_timeout = shutdown_timeout
        self.pool.heartbeat = beat_interval(process, self.notifier.watchdog_interval)
        self.recycler = Recycler(self.pool, shutdown_timeout + EXIT_MARGIN)
        self._signals: list[signal.Signals] = []
        self._stop_signal: signal.Signals | None = None
        self._forced = False
        self._reload = False
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._next_ping = 0.0
        self.log = _logger()

    @property
    def stop_signal(self) -> signal.Signals | None:
        """The signal that stopped the supervisor; ``None`` if it ended on its own (a failed boot)."""
        return self._stop_signal

    def request_reload(self) -> None:
        """A rolling restart, as on SIGHUP; callable from any thread (the dev loop's watcher)."""
        self._reload = True
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")  # wakes the loop as a signal would

    # -- the loop -------------------------------------------------------------------------------

    def run(self) -> int:
        """Start the workers, serve until a signal, stop them; the exit code."""
        previous = self._install_signals()
        try:
            self.log.info(
                f"supervisor: starting {self.pool.size} worker(s) on "
                + ", ".join(f"{lst.name} {lst.address}" for lst in self.pool.listeners)
            )
            if self._boot():
                self.notifier.ready(f"{self.pool.size} worker(s) ready")
                while self._stop_signal is None:
                    self._pump(TICK)
                    self.pool.replace_dead()
                    self.recycler.tick()
                    if self._reload:
                        self._reload = False
                        self._roll()
                return self._shutdown()
            return self._shutdown(failed=self._stop_signal is None)
        finally:
            self._restore_signals(previous)
            self.pool.close()
            self._selector.close()
            self._wake_r.close()
            self._wake_w.close()

    def _boot(self) -> bool:
        """Start every worker and wait for all to be ready (bounded); False: shut down."""
        for slot in range(1, self.pool.size + 1):
            self.pool.spawn(slot)
        deadline = time.monotonic() + self.pool.process.ready_timeout
        while self._stop_signal is None:
            failed = [w for w in self.pool.workers if not w.alive]
            if failed:
                self.log.error(
                    f"worker {failed[0].pid} {failed[0].describe_exit()} before it was ready; "
                    "stopping the others (see its log lines above)"
                )
                return False
            if all(w.ready for w in self.pool.workers):
                self.log.info(f"supervisor: {self.pool.size} worker(s) ready")
                return True
            if time.monotonic() >= deadline:
                self.log.error(
                    f"not every worker was ready within {self.pool.process.ready_timeout:g} s "
                    "(process.ready_timeout); stopping"
                )
                return False
            self._pump(min(TICK, max(0.0, deadline - time.monotonic())))
        return False

    def _pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` for a signal or a message; take messages, reap, act on signals."""
        self._listen_to_workers()
        for key, _ in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                try:
                    while self._wake_r.recv(512):
                        pass
                except BlockingIOError:
                    pass
        for worker in self.pool.workers:
            if worker.read_messages():
                took = (worker.ready_at or worker.started_at) - worker.started_at
                self.log.info(f"worker {worker.pid} (slot {worker.slot}) ready in {took:.2f} s")
        self.pool.reap()
        while self._signals:
            self._on_signal(self._signals.pop(0))
        self._end_hung()
        self._ping()

    def _listen_to_workers(self) -> None:
        """Wake on a message of any live worker (its READY=1 is acted on at once, not next tick)."""
        live = {w.notify for w in self.pool.workers if w.alive}
        for key in list(self._selector.get_map().values()):
            if key.fileobj is not self._wake_r and key.fileobj not in live:
                self._selector.unregister(key.fileobj)  # closed sockets are found by identity
        for sock in live - {key.fileobj for key in self._selector.get_map().values()}:
            self._selector.register(sock, selectors.EVENT_READ)

    def _end_hung(self) -> None:
        """Log the stacks of each worker whose loop stopped reporting, kill it (see heartbeat)."""
        timeout = self.pool.process.worker_timeout
        if timeout <= 0 or self.pool.heartbeat is None:
            return
        for worker in self.pool.live():
            silent = silence(worker, time.monotonic())
            if silent is not None and silent > timeout and worker.reason != "timeout":
                end_hung(worker, silent, timeout, self.log)

    def _ping(self) -> None:
        """``WATCHDOG=1`` every interval while every worker reports in time (see heartbeat)."""
        interval = self.notifier.watchdog_interval
        if interval is not None and time.monotonic() >= self._next_ping:
            limit = self.pool.process.worker_timeout or 2 * interval
            if all_in_time(self.pool.live(), limit, time.monotonic()):
                self.notifier.watchdog()
                self._next_ping = time.monotonic() + interval

    def _wait(self, done: Callable[[], bool], seconds: float) -> bool:
        """Pump until ``done()`` or a stop signal, at most ``seconds``; whether ``done()``."""
        deadline = time.monotonic() + seconds
        while not done():
            left = deadline - time.monotonic()
            if left <= 0 or self._stop_signal is not None:
                return done()
            self._pump(min(TICK, left))
        return True

    # -- signals --------------------------------------------------------------------------------

    def _install_signals(self) -> dict[signal.Signals, Any]:
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        handlers_taken()
        signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous: dict[signal.Signals, Any] = {}
        for sig in SIGNALS:
            previous[sig] = signal.signal(sig, self._record)
        return previous

    def _record(self, number: int, frame: FrameType | None) -> None:
        self._signals.append(signal.Signals(number))

    def _restore_signals(self, previous: dict[signal.Signals, Any]) -> None:
        signal.set_wakeup_fd(-1)
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)

    def _on_signal(self, sig: signal.Signals) -> None:
        if sig is signal.SIGCHLD:
            return
        if sig in FORWARDED:
            self._forward(sig)
            return
        if self._stop_signal is not None:
            if sig in STOP_SIGNALS and not self._forced:
                self._forced = True
                self.log.warning(f"supervisor: received {sig.name} again: forcing the shutdown")
                self.pool.signal_all(signal.SIGTERM)
            return
        if sig is signal.SIGHUP:
            self.log.info("supervisor: received SIGHUP: rolling restart of every worker")
            self._reload = True
            return
        self._stop_signal = sig
        self.log.info(
            f"supervisor: received {sig.name}: stopping {len(self.pool.live())} worker(s)"
        )

    def _forward(self, sig: signal.Signals) -> None:
        live = self.pool.live()
        if sig is signal.SIGUSR2:
            for worker in live:
                state = "ready" if worker.ready else "starting"
                if worker.retiring:
                    state = "stopping"
                self.log.info(
                    f"supervisor status: worker {worker.pid} (slot {worker.slot}) {state}, up "
                    f"{time.monotonic() - worker.started_at:.0f} s"
                    + (f": {worker.status}" if worker.status else "")
                )
            self.log.info(f"supervisor status: replacements {self.pool.replacement_counts()}")
        self.log.info(f"supervisor: received {sig.name}: passed on to {len(live)} worker(s)")
        self.pool.signal_all(sig)

    # -- rolling restart ------------------------------------------------------------------------

    def _roll(self) -> None:
        """Replace every worker, one at a time, each new one ready before the old one stops."""
        began = time.monotonic()
        self.notifier.reloading("rolling restart")
        replaced = 0
        for old in sorted(self.pool.current(), key=lambda w: w.slot):
            if self._stop_signal is not None:
                return
            new = self.pool.spawn(old.slot)
            ready_timeout = self.pool.process.ready_timeout
            self._wait(partial(_settled, new), ready_timeout)
            if not new.ready:
                if self._stop_signal is not None:
                    return  # the shutdown stops the new worker with the others
                why = (
                    f"it {new.describe_exit()}"
                    if not new.alive
                    else f"it was not ready within {ready_timeout:g} s (process.ready_timeout)"
                )
                self.pool.discard(new)
                self.log.error(
                    f"rolling restart stopped: the new worker {new.pid} for slot {old.slot} "
                    f"failed: {why}; {len(self.pool.current())} old worker(s) keep serving"
                )
                self.notifier.ready("rolling restart failed; old workers serving")
                return
            self._retire(old)
            replaced += 1
        self.log.info(
            f"rolling restart complete: {replaced} worker(s) replaced in "
            f"{time.monotonic() - began:.2f} s"
        )
        self.notifier.ready(f"{self.pool.size} worker(s) ready")

    def _retire(self, old: Worker) -> None:
        """SIGTERM ``old`` and wait for it (bounded); a stop signal leaves it to the shutdown."""
        old.retiring = True
        old.terminate()
        if self._wait(lambda: not old.alive, self.shutdown_timeout + EXIT_MARGIN):
            self.log.info(f"worker {old.pid} (slot {old.slot}) {old.describe_exit()}")
            self.pool.forget(old)
        elif self._stop_signal is None:
            self.log.error(f"worker {old.pid} did not stop in time; killing it")
            self.pool.discard(old)

    # -- shutdown -------------------------------------------------------------------------------

    def _shutdown(self, failed: bool = False) -> int:
        """Stop every worker concurrently (bounded); exit 0 / 1, or 130 after a second signal."""
        self.notifier.stopping("stopping workers")
        for worker in self.pool.live():
            worker.retiring = True
            worker.terminate()  # once: a worker being retired has had its SIGTERM
        # the workers hold the sockets now: the last of them to drain serves what is queued, then
        # closes them; a copy kept here would keep queueing connections that nobody accepts
        for listener in self.pool.listeners:
            listener.sock.close()
        deadline = time.monotonic() + self.shutdown_timeout + EXIT_MARGIN
        forced_at: float | None = None
        while self.pool.live():
            now = time.monotonic()
            if self._forced and forced_at is None:
                forced_at = now
            limit = deadline if forced_at is None else min(deadline, forced_at + FORCE_GRACE)
            if now >= limit:
                for worker in self.pool.live():
                    self.log.error(f"worker {worker.pid} is still running; killing it")
                self.pool.kill_all()
                break
            self._pump(min(TICK, limit - now))
        # a worker still starting (a successor) that our SIGTERM ended before Python could handle
        # it served nothing: its end is clean
        codes = [w.exit_code for w in self.pool.workers if not _ended_starting(w)]
        for worker in self.pool.workers:
            if worker.alive:
                continue
            level = "INFO" if worker.exit_code == 0 else "WARNING"
            self.log.log(
                level, f"worker {worker.pid} (slot {worker.slot}) {worker.describe_exit()}"
            )
        if self._forced:
            code: int = ExitCode.FORCED
        elif failed or any(c != 0 for c in codes):
            code = ExitCode.FAILURE
        else:
            code = ExitCode.OK
        self.log.info(
            f"supervisor: worker replacements by reason: {self.pool.replacement_counts()}"
        )
        self.log.bind(exit_code=code).info(f"supervisor: exit code {code}")
        return code


def _ended_starting(worker: Worker) -> bool:
    return worker.ready_at is None and worker.exit_code == -signal.SIGTERM


def _settled(worker: Worker) -> bool:
    return worker.ready or not worker.alive


def _logger() -> Logger:
    from loguru import logger

    return logger.bind(logger_name="framework._process.supervisor")
