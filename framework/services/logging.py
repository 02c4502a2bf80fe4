"""Logging as the built-ins see it: the settings model, the setup and the event renderer.

Kept as an import path; the code lives in `framework.logs` (setup and sinks), `framework.messages`
(how lifecycle events are worded) and `framework.settings` (`LoggingSettings`).
"""

from __future__ import annotations

from framework.logs import LogSink, setup_logging
from framework.messages import log_event
from framework.settings import LoggingSettings

__all__ = ("LogSink", "LoggingSettings", "log_event", "setup_logging")
