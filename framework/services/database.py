"""The built-in database service: a SQLAlchemy AsyncEngine, drained before it is disposed."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ("DatabaseSettings",)


class DatabaseSettings(BaseModel):
    """Settings section ``database``."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        "sqlite+aiosqlite:///./app.db",
        description="SQLAlchemy async URL; the password is never printed.",
    )
    pool_size: int = Field(5, ge=1, description="Connections kept open in the pool.")
    max_overflow: int = Field(10, ge=0, description="Extra connections allowed above pool_size.")
    pool_timeout: float = Field(30.0, gt=0, description="Seconds to wait for a free connection.")
    pool_recycle: float = Field(
        -1, description="Seconds after which a connection is replaced; -1: never."
    )
    pool_pre_ping: bool = Field(True, description="Test connections on checkout.")
    echo: bool = Field(False, description="Log every SQL statement.")
    connect_args: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the DBAPI connect()."
    )
