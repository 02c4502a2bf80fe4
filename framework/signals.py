"""Signal watching: which signals shut the application down, and counting them.

`watch_signals` receives SIGINT, SIGTERM, SIGHUP and SIGQUIT and calls ``handle(signal, count)``
for each (count 1: graceful shutdown, 2: forced, more: exit now; the runner decides). How signals
are received is injectable (``notify``, anyio's ``open_signal_receiver`` by default), so the
counting and the handling can be tested without a real signal; real-signal tests run a subprocess.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager
from typing import Protocol

import anyio
from anyio.abc import TaskStatus

__all__ = ("SIGNALS", "Notify", "SignalHandler", "watch_signals")

# Each starts the graceful shutdown; a second one (any of them) forces it. SIGHUP and SIGQUIT would
# otherwise kill the process on the spot, losing in-flight requests and the last log lines.
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)

SignalHandler = Callable[[signal.Signals, int], None]
"""Called with each signal received and how many have been received so far (1, 2, ...)."""


class Notify(Protocol):
    """Opens a receiver of ``signals``: a context manager giving an async iterator of numbers."""

    def __call__(self, *signals: signal.Signals) -> AbstractContextManager[AsyncIterator[int]]: ...


def _default_notify(*signals: signal.Signals) -> AbstractContextManager[AsyncIterator[int]]:
    return anyio.open_signal_receiver(*signals)


async def watch_signals(
    handle: SignalHandler,
    *,
    notify: Notify = _default_notify,
    signals: tuple[signal.Signals, ...] = SIGNALS,
    task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Call ``handle`` for each signal until cancelled; the previous handlers are put back after.

    Outside the main thread (where signals cannot be handled) it returns at once.
    """
    real = notify is _default_notify
    if real and threading.current_thread() is not threading.main_thread():
        task_status.started()
        return
    previous = {sig: signal.getsignal(sig) for sig in signals} if real else {}
    try:
        with notify(*signals) as received:
            task_status.started()
            count = 0
            async for sig in received:
                count += 1
                handle(signal.Signals(sig), count)
    finally:
        for sig, handler in previous.items():
            if handler is not None:
                signal.signal(sig, handler)
