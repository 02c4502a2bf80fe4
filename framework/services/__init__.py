"""Built-in services: HTTP (uvicorn), database (SQLAlchemy), logging (loguru), telemetry
(OpenTelemetry, extra ``otel``) and error reporting (Sentry, extra ``sentry``).

Importing this package is cheap: uvicorn, SQLAlchemy, OpenTelemetry and sentry-sdk are imported
when a service is created or started.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = (
    "DatabaseService",
    "DatabaseSettings",
    "HttpService",
    "HttpSettings",
    "LoggingSettings",
    "SentryService",
    "SentrySettings",
    "TelemetryService",
    "TelemetrySettings",
)

if TYPE_CHECKING:
    from framework.services._database import DatabaseService, DatabaseSettings
    from framework.services._http import HttpService, HttpSettings
    from framework.services._logging import LoggingSettings
    from framework.services._sentry import SentryService, SentrySettings
    from framework.services._telemetry import TelemetryService, TelemetrySettings

_WHERE = {
    "DatabaseService": "framework.services._database",
    "DatabaseSettings": "framework.services._database",
    "HttpService": "framework.services._http",
    "HttpSettings": "framework.services._http",
    "LoggingSettings": "framework.services._logging",
    "SentryService": "framework.services._sentry",
    "SentrySettings": "framework.services._sentry",
    "TelemetryService": "framework.services._telemetry",
    "TelemetrySettings": "framework.services._telemetry",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'framework.services' has no attribute {name!r}")
