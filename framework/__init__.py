"""framework: run a Python service that starts in order and shuts down without losing anything."""

from framework._config.settings import Settings
from framework._engine.errors import (
    ConfigError,
    DependencyCycleError,
    FrameworkError,
    ServiceError,
    ShutdownError,
    StartupError,
)
from framework._engine.exitcode import ExitCode
from framework._engine.service import Service, ServiceState
from framework._runtime.application import Application

__all__ = (
    "Application",
    "ConfigError",
    "DependencyCycleError",
    "ExitCode",
    "FrameworkError",
    "Service",
    "ServiceError",
    "ServiceState",
    "Settings",
    "ShutdownError",
    "StartupError",
)
