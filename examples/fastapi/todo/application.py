"""The application: the FastAPI app, its lifespan, and the HTTP service added to the container.

Nothing here tells the framework that the HTTP service needs the database: the endpoints and the
lifespan inject it through wiring, and that is enough for `framework check` to order db before
http, for the lifespan to run once the database is ready, and for the database to stop only
after the HTTP service has drained.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject
from fastapi import FastAPI

from framework import Application
from framework.services import DatabaseService, HttpService
from todo.containers import Container
from todo.endpoints import router
from todo.models import Base


@inject
def create_schema(db: DatabaseService = Provide[Container.db]) -> None:
    Base.metadata.create_all(db.engine)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    await anyio.to_thread.run_sync(create_schema)  # blocking SQLAlchemy calls: in a thread
    yield


def create_api() -> FastAPI:
    api = FastAPI(title="todo", lifespan=lifespan)
    api.include_router(router)
    return api


class AppContainer(Container):
    # a subclass does not inherit wiring_config: it is declared on the container the app creates
    wiring_config = containers.WiringConfiguration(modules=[".endpoints", ".application"])

    http = providers.Singleton(
        HttpService, app=providers.Callable(create_api), settings=Container.settings.provided.http
    )


class App(Application):
    container_class = AppContainer
