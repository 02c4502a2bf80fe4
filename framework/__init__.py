"""framework: run a Python service that starts in order and shuts down without losing anything."""

from framework.application import Application
from framework.errors import (
    ConfigError,
    DependencyCycleError,
    FrameworkError,
    ServiceError,
    ShutdownError,
    StartupError,
)
from framework.exitcode import ExitCode
from framework.service import Service, ServiceState
from framework.settings import Settings

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
