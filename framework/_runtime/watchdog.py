"""The last resort: end the process when the event loop cannot, after the logs are flushed.

A `Watchdog` is armed with a deadline (``arm(seconds, code, why)``); if it is not disarmed in
time it logs the stacks of all threads (`framework._runtime.stacks`: what the process was stuck
in), then calls its ``last_words`` (the runner logs why, writes the timeline, flushes the logs) from
a timer thread and then exits the process with ``code``, even when the event loop is stuck in
synchronous code. The exit path never waits on logging: the last words run in a thread of their
own and get `LAST_WORDS_BOUND` seconds; if they do not finish (a log write blocked on a stalled
stderr pipe holds the handler's lock), ``last_line`` is written straight to file descriptor 2 by a
bounded attempt, and the process exits regardless. The timer and the exit are injectable, as
uber-go/fx injects its clock and ``osExit``: tests pass a fake timer and an exit that records the
code.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from framework._engine.timing import LAST_WORDS_BOUND
from framework._runtime.stacks import log_text, stacks_report

__all__ = ("Timer", "Watchdog", "bounded", "daemon_timer", "exit_now", "write_stderr")


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


def bounded(function: Callable[[], object], seconds: float) -> bool:
    """Run ``function`` in a daemon thread for at most ``seconds``; True if it finished.

    An exception it raised (in time) is raised here.
    """
    errors: list[BaseException] = []

    def target() -> None:
        try:
            function()
        except BaseException as exc:  # handed to the caller
            errors.append(exc)

    thread = threading.Thread(target=target, name="framework-last-words", daemon=True)
    thread.start()
    thread.join(seconds)
    if errors:
        raise errors[0]
    return not thread.is_alive()


def write_stderr(text: str, seconds: float = 0.1) -> bool:
    """Write ``text`` to file descriptor 2 without any lock, giving up after ``seconds``."""
    return bounded(lambda: os.write(2, text.encode("utf-8", "replace")), seconds)


def exit_now(code: int) -> None:
    """Flush stdout and stderr (bounded: a stalled pipe never holds us) and end the process at
    once (no cleanup, no atexit)."""

    def flush() -> None:
        sys.stdout.flush()
        sys.stderr.flush()

    with contextlib.suppress(Exception):  # a closed or broken stream: nothing more to say
        bounded(flush, 0.1)
    os._exit(code)


class Watchdog:
    """At most one armed deadline; arming again replaces it. Safe to use from any thread."""

    def __init__(
        self,
        last_words: Callable[[int, str], None],
        *,
        last_line: Callable[[int, str], str] | None = None,
        start_timer: StartTimer = daemon_timer,
        exit: Callable[[int], None] = exit_now,
        last_words_bound: float = LAST_WORDS_BOUND,
    ) -> None:
        self._last_words = last_words
        self._last_line = last_line
        self._start_timer = start_timer
        self._exit = exit
        self._bound = last_words_bound
        self._timer: Timer | None = None
        self._deadline = float("inf")
        self._lock = threading.Lock()

    def arm(self, seconds: float, code: int, why: str) -> None:
        """Exit with ``code`` after ``seconds`` unless disarmed; ``why`` is logged first."""
        with self._lock:
            self._cancel()
            self._deadline = time.monotonic() + seconds
            self._timer = self._start_timer(seconds, self.fire, code, why)

    def arm_within(self, seconds: float, code: int, why: str) -> None:
        """As `arm`, unless a deadline at least as near is armed already (never postponed)."""
        with self._lock:
            if self._timer is not None and self._deadline <= time.monotonic() + seconds:
                return
        self.arm(seconds, code, why)

    def disarm(self) -> None:
        with self._lock:
            self._cancel()

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = float("inf")

    def fire(self, code: int, why: str) -> None:
        """Exit now: the last words (log, report, flush), bounded, then the exit, whatever
        happens."""
        stacks: list[str] = []  # the stacks of every thread, once taken; then whether logged

        def words() -> None:
            stacks.append(stacks_report(f"exiting now: {why}"))
            log_text(stacks[0])
            stacks.append("logged")
            self._last_words(code, why)

        try:
            # the last words get what the last line and the exit's flush (0.1 s each) leave
            done = bounded(words, max(self._bound - 0.2, 0.05))
            if not done and len(stacks) == 1:  # the log is what is stuck: the stacks to stderr
                write_stderr(stacks[0] + "\n")
            if not done and self._last_line is not None:
                write_stderr(self._last_line(code, why))
        finally:
            self._exit(code)

    def exit_later(self, seconds: float, code: int) -> None:
        """Exit with ``code`` after ``seconds`` whatever happens (the logs are flushed already)."""
        self._start_timer(seconds, self._exit, code)
