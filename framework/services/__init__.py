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
    from framework.services._database import DatabaseService, DatabaseSettings
    from framework.services._http import HttpService, HttpSettings
    from framework.services._logging import LoggingSettings

_WHERE = {
    "DatabaseService": "framework.services._database",
    "DatabaseSettings": "framework.services._database",
    "HttpService": "framework.services._http",
    "HttpSettings": "framework.services._http",
    "LoggingSettings": "framework.services._logging",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'framework.services' has no attribute {name!r}")
