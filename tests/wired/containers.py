"""The container the wired modules refer to (``Provide[Base.repo]``), and its services."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
from dependency_injector import containers, providers

from framework import Service, Settings

journal: list[str] = []


class Db(Service):
    start_delay = 0.0

    def __init__(self) -> None:
        self.ready = False

    async def start(self) -> None:
        await anyio.sleep(self.start_delay)
        self.ready = True
        journal.append("db started")

    async def stop(self) -> None:
        journal.append("db stopped")
        self.ready = False


class Cache(Service):
    async def start(self) -> None:
        journal.append("cache started")

    async def stop(self) -> None:
        journal.append("cache stopped")


class Repo:
    def __init__(self, db: Db) -> None:
        self.db = db

    def ready(self) -> bool:
        return self.db.ready


def open_session(db: Db) -> Iterator[str]:
    journal.append("session opened")
    yield f"session(ready={db.ready})"
    journal.append("session closed")


class Core(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    db = providers.Singleton(Db)
    repo = providers.Factory(Repo, db=db)
    session = providers.Resource(open_session, db=db)


class Base(Core):
    cache = providers.Singleton(Cache)
