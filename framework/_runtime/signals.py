"""Signal watching that does not depend on the event loop: which signals do what, and counting them.

A blocked event loop (a stop stuck in ``time.sleep``, a log write stalled on a full pipe) never
runs its own signal handlers, so `SignalWatcher` does not use them. It installs Python-level
handlers and points ``signal.set_wakeup_fd`` at a pipe of its own: the C-level handler writes each
signal's number to that pipe at once, whatever the main thread is doing, and a daemon thread
reading the pipe calls ``handle(signal, count)`` for each shutdown signal (count: how many so far,
1, 2, ...), in that thread, so it must never wait on the event loop; then every signal (SIGUSR1
and SIGUSR2 too, which do not count) is handed to the loop's ``on_loop`` handler through
`LoopHandle.call_soon` (the backend's public thread-safe call), which never waits either. A
hand-off the loop refuses goes to ``hand_off_failed``: the application logs it and still exits.

A library that calls ``signal.set_wakeup_fd`` or asyncio's ``add_signal_handler`` before the
watcher is installed keeps working: the watcher passes every byte on to the fd it replaced. One
that takes the wakeup fd after it is caught by the Python-level handler, which takes it back.

trio sets its own wakeup fd in ``trio.run``: the watcher is installed inside the running loop, so
it replaces that fd and passes every byte on to it; the previous fd and handlers are put back on
`SignalWatcher.close`. The per-byte step, `SignalWatcher.deliver`, is public so that counting
can be tested without a real signal; real-signal tests run a subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType
from typing import Any

import sniffio

from framework._runtime.stacks import log_stacks

__all__ = (
    "SIGNALS",
    "USER_SIGNALS",
    "HandOffFailed",
    "LoopHandle",
    "SignalHandler",
    "SignalWatcher",
)

# Each starts the graceful shutdown; a second one (any of them) forces it. SIGHUP and SIGQUIT would
# otherwise kill the process on the spot, losing in-flight requests and the last log lines.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

USER_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
"""SIGUSR1 reopens the log file, SIGUSR2 logs a status snapshot; neither stops anything."""

SignalHandler = Callable[[signal.Signals, int], None]
"""Called (from the watcher thread) with each signal and how many shutdown signals came so far."""

HandOffFailed = Callable[[signal.Signals, BaseException], None]
"""Called (from the watcher thread) when a signal could not be handed to the event loop."""

RECLAIM_EVERY = 0.5
"""Seconds between two checks that no other library took the signals over."""

_WAKE = b"\0"  # written by `close` to end the thread; no signal has the number 0


class LoopHandle:
    """The running event loop, as another thread (or a signal handler) can reach it: each backend's
    own public way to schedule a call from outside, which never waits for the loop.

    asyncio: ``loop.call_soon_threadsafe``; trio: ``TrioToken.run_sync_soon``. Both wake the loop
    themselves (through their own self-pipe), whoever owns ``signal.set_wakeup_fd``.
    """

    __slots__ = ("_schedule", "thread")

    def __init__(self, schedule: Callable[..., object], thread: int) -> None:
        self._schedule = schedule
        self.thread = thread
        """The ident of the loop's thread."""

    @classmethod
    def current(cls) -> LoopHandle:
        """The loop running this task (asyncio or trio)."""
        backend = sniffio.current_async_library()
        if backend == "trio":
            import trio

            return cls(trio.lowlevel.current_trio_token().run_sync_soon, threading.get_ident())
        import asyncio

        return cls(asyncio.get_running_loop().call_soon_threadsafe, threading.get_ident())

    def call_soon(self, func: Callable[..., object], *args: object) -> BaseException | None:
        """Schedule ``func(*args)`` on the loop, never waiting for it: None once scheduled, else
        the error that refused it (the loop is closed or finished)."""
        try:
            self._schedule(func, *args)
        except Exception as exc:
            return exc
        return None


_early_over = False
_stacks: list[threading.Thread] = []


def _dump_stacks(why: str) -> None:
    """Log every thread's stack from a thread of its own (`wait_for_stacks` before the end)."""
    thread = threading.Thread(target=log_stacks, args=(why,), name="framework-stacks", daemon=True)
    _stacks.append(thread)
    thread.start()


def wait_for_stacks(seconds: float = 0.5) -> None:
    """Before the final line: let a stack dump under way reach the log first (bounded), so that
    nothing is printed after the final line."""
    for thread in list(_stacks):
        thread.join(seconds)


def exit_if_early() -> None:
    """Until `handlers_taken`: SIGTERM or SIGINT ends the process at once, exit 0, one line.

    Installed first thing by the command line, while the framework and the application are still
    being imported. Restored later as the previous handler, it does nothing: the run is over and
    its exit code stands.
    """
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _exit_early)


def handlers_taken() -> None:
    """The application (or the supervisor) now handles the signals itself."""
    global _early_over
    _early_over = True


def _exit_early(signum: int, frame: FrameType | None) -> None:
    if _early_over:
        return
    name = signal.Signals(signum).name
    try:
        os.write(
            2, f"framework: {name} before startup: nothing had started; exit code 0\n".encode()
        )
    finally:
        os._exit(0)


class SignalWatcher:
    """Handlers for ``signals`` (and `USER_SIGNALS`), acted on from a daemon thread.

    ``handle`` runs in that thread for each shutdown signal; ``on_loop`` (an anyio loop token and
    a handler) then gets every signal, user signals too, on the loop, never waited for.
    """

    def __init__(
        self,
        handle: SignalHandler,
        *,
        on_loop: tuple[LoopHandle, SignalHandler] | None = None,
        hand_off_failed: HandOffFailed | None = None,
        signals: tuple[signal.Signals, ...] = SIGNALS,
        user_signals: tuple[signal.Signals, ...] = USER_SIGNALS,
    ) -> None:
        self._handle = handle
        self._on_loop = on_loop
        self._hand_off_failed = hand_off_failed
        self._signals = signals
        self._all = tuple(signals) + tuple(user_signals)
        self.count = 0
        self._previous: dict[signal.Signals, Any] = {}
        self._previous_fd: int | None = None
        self._pipe: tuple[int, int] | None = None
        self._thread: threading.Thread | None = None

    def deliver(self, signum: int) -> None:
        """What the thread does with one signal number read from the pipe."""
        try:
            sig = signal.Signals(signum)
        except ValueError:
            return
        if sig not in self._all:
            return
        if sig in self._signals:
            self.count += 1
            if self.count == 2:  # a forced shutdown: where it was stuck, for the post-mortem
                why = f"{sig.name} received again: forcing the shutdown"  # never waited for:
                _dump_stacks(why)  # the 130 comes within about 1 s even if the log is stuck
            self._handle(sig, self.count)
        if self._on_loop is not None:
            loop, on_loop = self._on_loop
            refused = loop.call_soon(on_loop, sig, self.count)
            if refused is not None and self._hand_off_failed is not None:
                self._hand_off_failed(sig, refused)

    def install(self) -> bool:
        """Take over the signals; False (and nothing done) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        handlers_taken()
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._pipe = (read, write)
        for sig in self._all:
            self._previous[sig] = signal.signal(sig, self._check_wakeup_fd)
            if sig not in self._signals and callable(self._previous[sig]):
                signal.signal(sig, self._previous[sig])  # a user signal's own handler still runs
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        thread = threading.Thread(target=self._read, name="framework-signals", daemon=True)
        self._thread = thread
        thread.start()
        return True

    def _check_wakeup_fd(self, signum: int, frame: FrameType | None) -> None:
        """The Python-level handler (main thread): the watcher thread acts on the signal, unless
        another library took the wakeup fd after `install` (a byte written to its fd never reaches
        the thread). Then the fd is taken back, the other one kept to pass bytes on to, and this
        signal written to the thread's pipe here.

        (A handler of SIGUSR1 or SIGUSR2 installed before is kept: it runs instead of this one, in
        the main thread; any Python-level handler makes the C-level one write to the wakeup fd.)"""
        if self._pipe is None:
            return
        write = self._pipe[1]
        current = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        if current != write:
            self._previous_fd = current
            with contextlib.suppress(OSError):
                os.write(write, bytes([signum]))

    def reclaim(self) -> list[str]:
        """Take back (main thread) what another library took since `install`: the Python-level
        handler of a shutdown signal (asyncio's ``add_signal_handler`` replaces it) and the wakeup
        fd. The fd taken over is kept to pass each byte on to, so the other library's own
        handlers still run. Returns what was taken back, to be logged."""
        if self._pipe is None or threading.current_thread() is not threading.main_thread():
            return []
        taken = [
            sig.name for sig in self._signals if signal.getsignal(sig) != self._check_wakeup_fd
        ]
        for name in taken:
            signal.signal(signal.Signals[name], self._check_wakeup_fd)
        write = self._pipe[1]
        current = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        if current != write:
            self._previous_fd = current
            taken.append("the wakeup fd")
        return taken

    def _read(self) -> None:
        assert self._pipe is not None
        read = self._pipe[0]
        while True:
            try:
                data = os.read(read, 64)
            except OSError:
                return
            if not data:
                return
            for signum in data:
                if signum == 0:
                    return
                self._forward(signum)
                self.deliver(signum)

    def _forward(self, signum: int) -> None:
        """Pass the byte on to the wakeup fd we replaced (trio's), as it would have got it."""
        if self._previous_fd is not None and self._previous_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self._previous_fd, bytes([signum]))

    def close(self) -> None:
        """Put back the previous handlers and wakeup fd; end the thread (bounded)."""
        if self._pipe is None:
            return
        read, write = self._pipe
        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
            self._previous_fd = None
        for sig, handler in self._previous.items():
            if handler is not None:
                signal.signal(sig, handler)
        self._previous.clear()
        with contextlib.suppress(OSError):
            os.write(write, _WAKE)
        if self._thread is not None:
            self._thread.join(timeout=1.0)
        if self._thread is None or not self._thread.is_alive():
            os.close(read)  # a thread still busy in a handler keeps its end open (daemon)
        os.close(write)
        self._pipe, self._thread = None, None

    def __enter__(self) -> SignalWatcher:
        self.install()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


async def keep_signals(watcher: SignalWatcher, every: float = RECLAIM_EVERY) -> None:
    """On the loop (the main thread), until cancelled: take back, every ``every`` seconds, the
    signals another library took from ``watcher``, saying so once each time."""
    import anyio

    from framework._runtime.messages import runner_log, signals_reclaimed

    while True:
        await anyio.sleep(every)
        taken = watcher.reclaim()
        if taken:
            runner_log().warning(signals_reclaimed(taken))
