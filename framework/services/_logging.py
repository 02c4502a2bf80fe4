"""Logging as the built-ins see it: the settings model, the setup and the event renderer.

Kept as an import path; the code lives in `framework._runtime.logs` (setup and sinks), `framework._runtime.messages`
(how lifecycle events are worded) and `framework._config.settings` (`LoggingSettings`).
"""

from __future__ import annotations

from framework._config.settings import LoggingSettings
from framework._runtime.logs import LogSink, setup_logging
from framework._runtime.messages import log_event

__all__ = ("LogSink", "LoggingSettings", "log_event", "setup_logging")
