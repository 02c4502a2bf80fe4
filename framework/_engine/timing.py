"""Every fixed timing margin of the framework, in one place (seconds).

These are not settings: they are the small margins the framework adds around the configured
bounds so that the configured bounds hold. The last two belong to the built-in services, which
still define their own copy (``DISPOSE_GRACE`` in ``services/database.py``, ``_ABORT_GRACE`` in the
HTTP service) until they import it from here.
"""

from __future__ import annotations

__all__ = (
    "ABORT_GRACE",
    "DISPOSE_GRACE",
    "FORCED_EXIT_AFTER",
    "GRACE_HEADROOM",
    "HARD_EXIT_MARGIN",
    "LAST_WORDS_BOUND",
    "LEFT_BEHIND_EXIT_AFTER",
    "STOP_GRACE",
    "THIRD_SIGNAL_EXIT_AFTER",
    "exit_deadline",
)

FORCED_EXIT_AFTER = 0.5
"""After a second signal, how long the cancelled stops get before the process exits regardless."""

THIRD_SIGNAL_EXIT_AFTER = 0.1
"""After a third signal, how long before the watchdog exits (130): time for a responsive loop to
log that it is forcing the shutdown."""

LEFT_BEHIND_EXIT_AFTER = 0.5
"""After ``run()`` returned, how long a stop left behind may hold the process before it ends."""

HARD_EXIT_MARGIN = 2.0
"""Past ``lifecycle.shutdown_timeout``, how long a shutdown stuck in code that ignores
cancellation is waited for before the process exits regardless (exit 1)."""

LAST_WORDS_BOUND = 0.6
"""How long the watchdog's exit may take: its last words (log why, the timeline, the flush), then,
if they did not finish, a last line straight to stderr, then the exit. A log write blocked on a
stalled stderr pipe never holds the exit. The watchdog is armed this much before
``lifecycle.shutdown_timeout + HARD_EXIT_MARGIN``, so the process is gone by then."""

STOP_GRACE = 0.05
"""How long past its deadline a stop that ignores cancellation is waited for before it is left
behind and its dependencies are stopped anyway."""

GRACE_HEADROOM = 2.0
"""Headroom ``framework check`` asks for between the shutdown budget and the platform's grace
period: the log flush and the process exit happen after the last stop."""

DISPOSE_GRACE = 1.0
"""The database service: after the drain, how long (shielded) disposing the pool may take."""

ABORT_GRACE = 0.25
"""The HTTP service: after a cancelled stop, how long (shielded) the server task gets to end."""


def exit_deadline(count: int, shutdown_timeout: float) -> float:
    """Seconds from the ``count``-th shutdown signal (or a rollback, 1) to the watchdog's exit:
    the first leaves the process gone by ``shutdown_timeout + HARD_EXIT_MARGIN``."""
    if count == 1:
        return shutdown_timeout + HARD_EXIT_MARGIN - LAST_WORDS_BOUND
    return FORCED_EXIT_AFTER if count == 2 else THIRD_SIGNAL_EXIT_AFTER
