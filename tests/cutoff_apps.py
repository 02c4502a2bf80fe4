"""A FastAPI app with a synchronous endpoint (it runs in a worker thread) that inserts a row in a
transaction, then takes ``seconds`` before committing: for `tests/test_cutoff.py`."""

from __future__ import annotations

import time

from dependency_injector import containers, providers
from fastapi import FastAPI
from sqlalchemy import text

from framework import Application, Settings
from framework.services import DatabaseService, HttpService


class Db(DatabaseService):
    async def start(self) -> None:
        await super().start()
        with self.engine.begin() as connection:
            connection.execute(text("CREATE TABLE IF NOT EXISTS orders (id INTEGER)"))


def make_api(db: Db) -> FastAPI:
    api = FastAPI()

    @api.post("/order")
    def order(seconds: float = 3.0) -> dict[str, str]:
        with db.sessions.begin() as session:
            session.execute(text("INSERT INTO orders (id) VALUES (1)"))
            time.sleep(seconds)  # still inside the transaction when the drain bound passes
        return {"ok": "committed"}

    return api


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    db = providers.Singleton(Db, settings.provided.database)
    http = providers.Singleton(
        HttpService, app=providers.Factory(make_api, db), settings=settings.provided.http
    )


class App(Application):
    container_class = Container
