"""Built-in services: HTTP (uvicorn), database (SQLAlchemy), logging (loguru).

Importing this package is cheap: uvicorn and SQLAlchemy are imported when a service is created.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = (
    "DatabaseService",
    "DatabaseSettings",
    "HttpService",
    "HttpSettings",
    "LoggingSettings",
)

if TYPE_CHECKING:
    from framework.services.database import DatabaseService, DatabaseSettings
    from framework.services.http import HttpService, HttpSettings
    from framework.services.logging import LoggingSettings

_WHERE = {
    "DatabaseService": "framework.services.database",
    "DatabaseSettings": "framework.services.database",
    "HttpService": "framework.services.http",
    "HttpSettings": "framework.services.http",
    "LoggingSettings": "framework.services.logging",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'framework.services' has no attribute {name!r}")
