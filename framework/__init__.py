"""framework: run a Python service that starts in order and shuts down without losing anything.

The public names are the ones below (and those of `framework.services` and `framework.testing`);
every other module of the package is private (its name, or a package above it, starts with ``_``).
"""

from framework._config.settings import (
    LifecycleSettings,
    ProcessSettings,
    ServiceSettings,
    Settings,
)
from framework._engine.errors import (
    ConfigError,
    DependencyCycleError,
    FrameworkError,
    ServiceError,
    ShutdownError,
    StartupError,
)
from framework._engine.events import (
    Bound,
    Event,
    EventHandler,
    Outcome,
    Phase,
    RollingBack,
    ServiceCrashed,
    ServiceHealthChanged,
    ServiceRestarted,
    ServiceRestarting,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStarting,
    ServiceStopFailed,
    ServiceStopped,
    ServiceStopping,
    ShutdownFinished,
    ShutdownStarted,
    StartupFinished,
)
from framework._engine.exitcode import ExitCode
from framework._engine.service import Service, ServiceState
from framework._runtime.application import Application

__all__ = (
    "Application",
    "Bound",
    "ConfigError",
    "DependencyCycleError",
    "Event",
    "EventHandler",
    "ExitCode",
    "FrameworkError",
    "LifecycleSettings",
    "Outcome",
    "Phase",
    "ProcessSettings",
    "RollingBack",
    "Service",
    "ServiceCrashed",
    "ServiceError",
    "ServiceHealthChanged",
    "ServiceRestarted",
    "ServiceRestarting",
    "ServiceSettings",
    "ServiceStartFailed",
    "ServiceStarted",
    "ServiceStarting",
    "ServiceState",
    "ServiceStopFailed",
    "ServiceStopped",
    "ServiceStopping",
    "Settings",
    "ShutdownError",
    "ShutdownFinished",
    "ShutdownStarted",
    "StartupError",
    "StartupFinished",
)
