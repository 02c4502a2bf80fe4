"""Applications with background work, for `tests/test_background.py` (run with `framework run`).

- ``Consumer``: a ``run()`` that takes units of work of ``work.unit`` seconds while
  ``self.stopping`` is not set, journaling each unit's begin and end, and how far into which
  unit the shutdown began (``stopping set 0.123 s into unit 2``).
- ``Writer``: spawns a task in ``start()`` that writes a row to the database ``work.write_after``
  seconds later, one that ends at once (journaling ``warmed up``) and, with ``work.fail_after``
  set, one that raises ``work.fail_after`` seconds after it started.
- ``Web``: a FastAPI endpoint whose ``BackgroundTask`` writes a row ``work.write_after`` seconds
  after the response.
- ``Db``: a `DatabaseService` that journals its stop.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import anyio
from dependency_injector import containers, providers
from fastapi import BackgroundTasks, FastAPI
from pydantic import BaseModel, Field
from sqlalchemy import text

from framework import Application, Service, Settings
from framework.services import DatabaseService, HttpService

_lock = threading.Lock()


class Work(BaseModel):
    journal: Path | None = None
    unit: float = 0.5
    write_after: float = 1.0
    fail_after: float | None = None


class WorkSettings(Settings):
    work: Work = Field(default_factory=Work)


def note(work: Work, line: str) -> None:
    if work.journal is not None:
        with _lock, work.journal.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


class Db(DatabaseService):
    def __init__(self, settings: object, work: Work) -> None:
        super().__init__(settings)  # type: ignore[arg-type]
        self.work = work

    async def start(self) -> None:
        await super().start()
        async with self.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE IF NOT EXISTS rows (what TEXT)"))
        note(self.work, "db started")

    async def stop(self) -> None:
        note(self.work, "db stopping")
        await super().stop()


async def write_row(db: Db, what: str) -> None:
    async with db.engine.begin() as connection:
        await connection.execute(text("INSERT INTO rows (what) VALUES (:w)"), {"w": what})
    note(db.work, f"wrote {what}")


class Consumer(Service):
    def __init__(self, work: Work) -> None:
        self.work = work

    async def run(self) -> None:
        units, began = 0, 0.0

        def seen() -> None:  # the first moment of shutdown: how far into which unit
            note(self.work, f"stopping set {time.monotonic() - began:.3f} s into unit {units}")

        self.stopping.add_callback(seen)
        while not self.stopping.is_set():
            units += 1
            began = time.monotonic()
            note(self.work, f"unit {units} begin")
            await anyio.sleep(self.work.unit)
            note(self.work, f"unit {units} done")
        note(self.work, "run returned")

    async def stop(self) -> None:
        note(self.work, "consumer stop")


class Writer(Service):
    def __init__(self, db: Db, work: Work) -> None:
        self.db, self.work = db, work

    async def start(self) -> None:
        self.spawn(self._later, name="write later")
        self.spawn(self._at_once, name="warm up")
        if self.work.fail_after is not None:
            self.spawn(self._fails, name="flaky write")
        note(self.work, "writer started")

    async def _fails(self) -> None:
        assert self.work.fail_after is not None
        await anyio.sleep(self.work.fail_after)
        note(self.work, "flaky write raises")
        raise RuntimeError("upstream went away")

    async def _at_once(self) -> None:
        note(self.work, "warmed up")

    async def _later(self) -> None:
        await anyio.sleep(self.work.write_after)
        await write_row(self.db, "spawned")


def web(db: Db, work: Work) -> FastAPI:
    api = FastAPI()

    async def later() -> None:
        await anyio.sleep(work.write_after)
        await write_row(db, "background")

    @api.post("/order")
    async def order(tasks: BackgroundTasks) -> dict[str, str]:
        tasks.add_task(later)
        note(work, "responded")
        return {"ok": "yes"}

    return api


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=WorkSettings)
    work = settings.provided.work
    db = providers.Singleton(Db, settings.provided.database, work)
    consumer = providers.Singleton(Consumer, work)
    writer = providers.Singleton(Writer, db, work)


class ConsumerApp(Application):
    container_class = Container
    settings_class = WorkSettings


class WebContainer(Container):
    http = providers.Singleton(
        HttpService,
        app=providers.Factory(web, Container.db, Container.work),
        settings=Container.settings.provided.http,
    )


class WebApp(ConsumerApp):
    container_class = WebContainer
