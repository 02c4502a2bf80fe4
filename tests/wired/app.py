"""A FastAPI application wired as users write it: nothing but the wiring says http needs db.

The lifespan uses the database: it must start after it and end before it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject
from fastapi import FastAPI

from framework import Application
from framework.services import HttpService
from tests.wired.by_class import router
from tests.wired.containers import Core, Db, journal


@inject
def database(db: Db = Provide[Core.db]) -> Db:
    return db


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    db = database()
    journal.append(f"lifespan startup (db ready={db.ready})")
    yield
    journal.append(f"lifespan shutdown (db ready={db.ready})")


api = FastAPI(lifespan=lifespan)
api.include_router(router)


class Container(Core):
    wiring_config = containers.WiringConfiguration(modules=[".by_class", __name__])
    http = providers.Singleton(
        HttpService, app=providers.Object(api), settings=Core.settings.provided.http
    )


class App(Application):
    container_class = Container
