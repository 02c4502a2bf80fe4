"""String ids: ``Provide["db"]`` and ``Provide["cache"]``, no import of the container."""

from __future__ import annotations

from typing import Any

from dependency_injector.wiring import Provide, Provider, inject


@inject
def by_name(db: Any = Provide["db"]) -> Any:
    return db


@inject
def provider_of(cache: Any = Provider["cache"]) -> Any:
    return cache


@inject
def unknown(thing: Any = Provide["no_such_provider"]) -> Any:
    return thing
