"""framework: run a Python service that starts in order and shuts down without losing anything."""

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

__all__ = (
    "ConfigError",
    "DependencyCycleError",
    "ExitCode",
    "FrameworkError",
    "Service",
    "ServiceError",
    "ServiceState",
    "ShutdownError",
    "StartupError",
)
