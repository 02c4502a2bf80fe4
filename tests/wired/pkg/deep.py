"""A submodule of a wired package, with a method of a class injected."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject

from tests.wired.containers import Base, Cache


class Handler:
    @inject
    def handle(self, cache: Cache = Provide[Base.cache]) -> Cache:
        return cache
