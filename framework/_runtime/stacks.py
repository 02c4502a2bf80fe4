"""The Python stacks of every thread, written where a post-mortem finds them.

A process that is about to be ended by force (a second signal, the watchdog once the shutdown
budget is spent) first writes the stacks of all its threads to the log, as one entry, so that
what it was stuck in can be read afterwards. The stacks come from the standard library's
`faulthandler`, which reads them without running any code of the threads it describes; the
entry is written with a bound, and if the log does not take it in time (a sink stuck on a
stalled pipe is often what hangs), the stacks go straight to file descriptor 2.

A supervisor's worker also arms `STACKS_SIGNAL`: on it, faulthandler writes the stacks to the
pipe the supervisor passed (``FRAMEWORK_STACKS_FD``) from the signal handler itself, so a worker
whose event loop is blocked still answers.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import signal
import tempfile
import threading
from collections.abc import Callable, Mapping

__all__ = (
    "STACKS_FD_ENV",
    "STACKS_SIGNAL",
    "arm_stack_signal",
    "log_stacks",
    "log_text",
    "stacks_report",
    "thread_stacks",
)

STACKS_FD_ENV = "FRAMEWORK_STACKS_FD"
"""In a supervisor's worker: the file descriptor its stacks are written to on `STACKS_SIGNAL`."""

STACKS_SIGNAL = signal.SIGWINCH
"""What the supervisor sends a hung worker. Ignored by default, and never sent by a terminal to a
worker (each runs in a process group of its own), so one arriving early does no harm."""

LOG_BOUND = 0.3
"""How long the log gets to take the stacks before they go to stderr instead."""


def thread_stacks() -> str:
    """The stacks of all threads, most recent call first, as faulthandler writes them."""
    with tempfile.TemporaryFile() as out:
        faulthandler.dump_traceback(out, all_threads=True)
        out.seek(0)
        return out.read().decode("utf-8", "replace").rstrip("\n")


def stacks_report(why: str) -> str:
    """One log entry's text: this process's pid, ``why``, and the stacks of all its threads."""
    return f"stacks of all threads of process {os.getpid()} ({why}):\n{thread_stacks()}"


def log_text(text: str) -> None:
    """``text`` as one error entry of the framework's log (unbounded: see `log_stacks`)."""
    from loguru import logger

    logger.bind(logger_name="framework._runtime.stacks", pid=os.getpid()).error(text)


def log_stacks(why: str) -> None:
    """Write every thread's stack to the log as one entry (to stderr if the log is stuck)."""
    text = stacks_report(why)
    if not _within(lambda: log_text(text), LOG_BOUND):  # the log is stuck, or broken
        _within(lambda: os.write(2, (text + "\n").encode("utf-8", "replace")), 0.1)


def _within(function: Callable[[], object], seconds: float) -> bool:
    """Run ``function`` in a daemon thread for at most ``seconds``; whether it succeeded."""
    done = threading.Event()

    def target() -> None:
        with contextlib.suppress(Exception):
            function()
            done.set()

    threading.Thread(target=target, name="framework-stacks", daemon=True).start()
    return done.wait(seconds)


def arm_stack_signal(environ: Mapping[str, str] | None = None) -> bool:
    """In a worker given ``FRAMEWORK_STACKS_FD``: dump the stacks there on `STACKS_SIGNAL`."""
    value = (os.environ if environ is None else environ).get(STACKS_FD_ENV, "")
    if not value.isdigit():
        return False
    with contextlib.suppress(OSError, RuntimeError, ValueError):
        faulthandler.register(STACKS_SIGNAL, file=int(value), all_threads=True, chain=False)
        return True
    return False
