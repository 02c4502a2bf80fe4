"""framework: run a Python service that starts in order and shuts down without losing anything.

The public names are the ones below (and those of `framework.services` and `framework.testing`);
every other module of the package is private (its name, or a package above it, starts with ``_``).

Importing it is cheap: each name is imported from its module when first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
        SpawnedTaskFailed,
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
    "SpawnedTaskFailed",
    "StartupError",
    "StartupFinished",
)

_WHERE = {
    "Application": "framework._runtime.application",
    "Bound": "framework._engine.events",
    "ConfigError": "framework._engine.errors",
    "DependencyCycleError": "framework._engine.errors",
    "Event": "framework._engine.events",
    "EventHandler": "framework._engine.events",
    "ExitCode": "framework._engine.exitcode",
    "FrameworkError": "framework._engine.errors",
    "LifecycleSettings": "framework._config.settings",
    "Outcome": "framework._engine.events",
    "Phase": "framework._engine.events",
    "ProcessSettings": "framework._config.settings",
    "RollingBack": "framework._engine.events",
    "Service": "framework._engine.service",
    "ServiceCrashed": "framework._engine.events",
    "ServiceError": "framework._engine.errors",
    "ServiceHealthChanged": "framework._engine.events",
    "ServiceRestarted": "framework._engine.events",
    "ServiceRestarting": "framework._engine.events",
    "ServiceSettings": "framework._config.settings",
    "ServiceStartFailed": "framework._engine.events",
    "ServiceStarted": "framework._engine.events",
    "ServiceStarting": "framework._engine.events",
    "ServiceState": "framework._engine.service",
    "ServiceStopFailed": "framework._engine.events",
    "ServiceStopped": "framework._engine.events",
    "ServiceStopping": "framework._engine.events",
    "Settings": "framework._config.settings",
    "ShutdownError": "framework._engine.errors",
    "ShutdownFinished": "framework._engine.events",
    "ShutdownStarted": "framework._engine.events",
    "SpawnedTaskFailed": "framework._engine.events",
    "StartupError": "framework._engine.errors",
    "StartupFinished": "framework._engine.events",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'framework' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
