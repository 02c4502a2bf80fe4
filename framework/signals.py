"""Signal watching that does not depend on the event loop: which signals do what, and counting them.

A blocked event loop (a stop stuck in ``time.sleep``, a log write stalled on a full pipe) never
runs its own signal handlers, so `SignalWatcher` does not use them. It installs Python-level
handlers that do nothing and points ``signal.set_wakeup_fd`` at a pipe of its own: the C-level
handler writes each signal's number to that pipe at once, whatever the main thread is doing, and
a daemon thread reading the pipe calls ``handle(signal, count)`` for each shutdown signal (count:
how many so far, 1, 2, ...), in that thread, so it must never wait on the event loop; then every
signal (SIGUSR1 and SIGUSR2 too, which do not count) is handed to the loop's ``on_loop`` handler
through `call_soon`, which never waits either.

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

__all__ = ("SIGNALS", "USER_SIGNALS", "SignalHandler", "SignalWatcher", "call_soon")

# Each starts the graceful shutdown; a second one (any of them) forces it. SIGHUP and SIGQUIT would
# otherwise kill the process on the spot, losing in-flight requests and the last log lines.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

USER_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)
"""SIGUSR1 reopens the log file, SIGUSR2 logs a status snapshot; neither stops anything."""

SignalHandler = Callable[[signal.Signals, int], None]
"""Called (from the watcher thread) with each signal and how many shutdown signals came so far."""

_WAKE = b"\0"  # written by `close` to end the thread; no signal has the number 0


def _ignore(signum: int, frame: FrameType | None) -> None:
    """The Python-level handler: the watcher thread acts, the main thread has nothing to do.

    (A handler of SIGUSR1 or SIGUSR2 installed before is kept: it runs as well, in the main
    thread; any Python-level handler makes the C-level one write to the wakeup fd.)"""


def call_soon(token: Any, func: Callable[..., object], *args: object) -> bool:
    """Schedule ``func(*args)`` on the loop of ``token`` (an anyio ``EventLoopToken``), never
    waiting for it; False if that loop has finished."""
    try:
        token.backend_class.run_sync_soon(func, args, token.native_token)
    except Exception:  # the loop is closed or finished: nobody is left to tell
        return False
    return True


class SignalWatcher:
    """Handlers for ``signals`` (and `USER_SIGNALS`), acted on from a daemon thread.

    ``handle`` runs in that thread for each shutdown signal; ``on_loop`` (an anyio loop token and
    a handler) then gets every signal, user signals too, on the loop, never waited for.
    """

    def __init__(
        self,
        handle: SignalHandler,
        *,
        on_loop: tuple[Any, SignalHandler] | None = None,
        signals: tuple[signal.Signals, ...] = SIGNALS,
        user_signals: tuple[signal.Signals, ...] = USER_SIGNALS,
    ) -> None:
        self._handle = handle
        self._on_loop = on_loop
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
            self._handle(sig, self.count)
        if self._on_loop is not None:
            token, on_loop = self._on_loop
            call_soon(token, on_loop, sig, self.count)

    def install(self) -> bool:
        """Take over the signals; False (and nothing done) outside the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return False
        read, write = os.pipe()
        os.set_blocking(write, False)
        self._pipe = (read, write)
        for sig in self._all:
            self._previous[sig] = signal.signal(sig, _ignore)
            if sig not in self._signals and callable(self._previous[sig]):
                signal.signal(sig, self._previous[sig])  # a user signal's own handler still runs
        self._previous_fd = signal.set_wakeup_fd(write, warn_on_full_buffer=False)
        thread = threading.Thread(target=self._read, name="framework-signals", daemon=True)
        self._thread = thread
        thread.start()
        return True

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
