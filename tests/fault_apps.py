"""Applications whose services block the event loop, for the fault tests (`tests/test_faults.py`).

The `tests.sample_apps` probes, plus synchronous code where async code belongs: a constructor, a
``run()`` body or a ``stop()`` that calls ``time.sleep``, so the loop is blocked and only a signal
handling that does not depend on it can act.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
from dependency_injector import containers, providers
from pydantic import Field

from framework import Service, Settings
from framework.services import DatabaseService
from tests.sample_apps import App, Behaviour, Probe, record


class FaultBehaviour(Behaviour):
    sync_init: dict[str, float] = Field(default_factory=dict)  # time.sleep in the constructor
    sync_run: dict[str, float] = Field(default_factory=dict)  # time.sleep in run()
    sync_stop: dict[str, float] = Field(default_factory=dict)  # time.sleep in stop()


class FaultSettings(Settings):
    behaviour: FaultBehaviour = Field(default_factory=FaultBehaviour)


class Blocking(Probe):
    b: FaultBehaviour

    def __init__(self, name: str, behaviour: FaultBehaviour, **deps: object) -> None:
        super().__init__(name, behaviour, **deps)
        if name in behaviour.sync_init:
            self.log("init")
            time.sleep(behaviour.sync_init[name])

    async def run(self) -> None:
        if self.name in self.b.sync_run:
            self.log("blocking")
            time.sleep(self.b.sync_run[self.name])
        await super().run()

    async def stop(self) -> None:
        if self.name in self.b.sync_stop:
            self.log("blocking")
            time.sleep(self.b.sync_stop[self.name])
        await super().stop()


class FaultContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=FaultSettings)
    behaviour = settings.provided.behaviour
    a = providers.Singleton(Blocking, "a", behaviour)
    b = providers.Singleton(Blocking, "b", behaviour, a=a)


class FaultApp(App):
    """a <- b, each able to block the loop."""

    container_class = FaultContainer  # type: ignore[assignment]
    settings_class = FaultSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)


class Load(Service):
    """Keeps ``connections`` database connections busy with short queries while it runs."""

    def __init__(self, db: DatabaseService, behaviour: FaultBehaviour, connections: int = 4):
        self.db, self.b, self.connections = db, behaviour, connections

    async def run(self) -> None:
        async with anyio.create_task_group() as tasks:
            for _ in range(self.connections):
                tasks.start_soon(self._query)
            record(self.b.journal, "load running")

    async def _query(self) -> None:
        from sqlalchemy import text

        engine: Any = self.db.engine
        while True:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT pg_sleep(0.3)"))  # mostly in a query


class Database(DatabaseService):
    """The built-in database service, depending on other services (so it is not the last stop)."""

    def __init__(self, settings: Any, **deps: object) -> None:
        super().__init__(settings)


class LoadContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=FaultSettings)
    behaviour = settings.provided.behaviour
    a = providers.Singleton(Blocking, "a", behaviour)
    db = providers.Singleton(Database, settings=settings.provided.database, a=a)
    load = providers.Singleton(Load, db=db, behaviour=behaviour)


class LoadApp(FaultApp):
    """a <- db <- load: a database under load, and a service the database's stop comes before."""

    container_class = LoadContainer  # type: ignore[assignment]
