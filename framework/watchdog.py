"""The last resort: end the process when the event loop cannot, after the logs are flushed.

A `Watchdog` is armed with a deadline (``arm(seconds, code, why)``); if it is not disarmed in
time it calls its ``last_words`` (the runner logs why, writes the timeline, flushes the logs) from
a timer thread and then exits the process with ``code``, even when the event loop is stuck in
synchronous code. The timer and the exit are injectable, as uber-go/fx injects its clock and
``osExit``: tests pass a fake timer and an exit that records the code.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import Any, Protocol

__all__ = ("Timer", "Watchdog", "daemon_timer", "exit_now")


class Timer(Protocol):
    def cancel(self) -> None: ...


StartTimer = Callable[..., Timer]
"""``start_timer(seconds, function, *args)``: call ``function(*args)`` after ``seconds``."""


def daemon_timer(seconds: float, function: Callable[..., object], *args: Any) -> Timer:
    """A started timer thread that does not keep the process alive."""
    timer = threading.Timer(seconds, function, args)
    timer.daemon = True
    timer.start()
    return timer


def exit_now(code: int) -> None:
    """Flush stdout and stderr and end the process at once (no cleanup, no atexit)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


class Watchdog:
    """At most one armed deadline; arming again replaces it."""

    def __init__(
        self,
        last_words: Callable[[int, str], None],
        *,
        start_timer: StartTimer = daemon_timer,
        exit: Callable[[int], None] = exit_now,
    ) -> None:
        self._last_words = last_words
        self._start_timer = start_timer
        self._exit = exit
        self._timer: Timer | None = None

    def arm(self, seconds: float, code: int, why: str) -> None:
        """Exit with ``code`` after ``seconds`` unless disarmed; ``why`` is logged first."""
        self.disarm()
        self._timer = self._start_timer(seconds, self.fire, code, why)

    def disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def fire(self, code: int, why: str) -> None:
        """Exit now: the last words (log, report, flush), then the exit, whatever happens."""
        try:
            self._last_words(code, why)
        finally:
            self._exit(code)

    def exit_later(self, seconds: float, code: int) -> None:
        """Exit with ``code`` after ``seconds`` whatever happens (the logs are flushed already)."""
        self._start_timer(seconds, self._exit, code)
