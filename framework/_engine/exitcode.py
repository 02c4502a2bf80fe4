"""Process exit codes."""

from __future__ import annotations

import enum

__all__ = ("ExitCode",)


class ExitCode(enum.IntEnum):
    """What `Application.run()` returns and `framework run` exits with."""

    OK = 0
    """Every service started and stopped cleanly."""
    FAILURE = 1
    """Startup failed, a service crashed, or a stop failed or timed out."""
    CONFIG = 78
    """Invalid configuration or dependency graph; nothing was started (EX_CONFIG)."""
    FORCED = 130
    """Shutdown was forced by a second signal."""
