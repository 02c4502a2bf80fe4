"""The restart policy of a service's ``run()``: whether a crash is restarted, and after how long.

Pure data and arithmetic, no I/O: the engine (`framework._engine.lifecycle`) asks `RestartPolicy.backoff`
with the times of the earlier restarts, and restarts after that many seconds, or gives up (the
application shuts down in order and exits 1, as without a policy).

``services.<name>.restart = "on-failure"``: a ``run()`` that raises is stopped, then started again
after ``restart_backoff`` seconds, doubling with each restart counted in ``restart_window``, at most
`MAX_BACKOFF`. More than ``restart_max`` restarts within ``restart_window`` seconds: no more.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ("MAX_BACKOFF", "NEVER", "Restart", "RestartPolicy")

MAX_BACKOFF = 30.0
"""The longest backoff (seconds), however many restarts came before."""


@dataclass(frozen=True)
class Restart:
    """One restart of a service: when (the clock of the event loop), why, and the backoff served."""

    at: float
    cause: str
    backoff: float


@dataclass(frozen=True)
class RestartPolicy:
    """``services.<name>.restart`` and its budget: ``on_failure`` false means never restart."""

    on_failure: bool = False
    max_restarts: int = 3
    window: float = 60.0
    initial_backoff: float = 0.5

    @classmethod
    def from_settings(cls, section: object) -> RestartPolicy:
        """From a ``services.<name>`` settings section (`framework._config.settings.ServiceSettings`)."""
        return cls(
            on_failure=getattr(section, "restart", "never") == "on-failure",
            max_restarts=int(getattr(section, "restart_max", 3)),
            window=float(getattr(section, "restart_window", 60.0)),
            initial_backoff=float(getattr(section, "restart_backoff", 0.5)),
        )

    def recent(self, earlier: Sequence[float], now: float) -> int:
        """How many of the ``earlier`` restart times fall within the window ending ``now``."""
        return sum(1 for at in earlier if now - at < self.window)

    def backoff(self, earlier: Sequence[float], now: float) -> float | None:
        """Seconds to wait before restarting a crash at ``now``, or None: do not restart.

        ``earlier`` are the times of the restarts so far. The backoff doubles with each restart
        within the window (so it starts over after a quiet window), at most `MAX_BACKOFF`.
        """
        if not self.on_failure:
            return None
        count = self.recent(earlier, now)
        if count >= self.max_restarts:
            return None
        return min(self.initial_backoff * 2.0**count, MAX_BACKOFF)


NEVER = RestartPolicy()
"""The default: a ``run()`` that raises shuts the application down."""
