"""A FastAPI app whose lifespan shutdown fails (the code after ``yield`` raises), served by an
`HttpService`: for `tests/test_http.py`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from dependency_injector import containers, providers
from fastapi import FastAPI

from framework import Application, Settings
from framework.services import HttpService


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    yield
    raise RuntimeError("could not flush the outbox")


def make_api() -> FastAPI:
    api = FastAPI(lifespan=lifespan)

    @api.get("/hello")
    async def hello() -> dict[str, str]:
        return {"hello": "you"}

    return api


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    http = providers.Singleton(
        HttpService, app=providers.Factory(make_api), settings=settings.provided.http
    )


class App(Application):
    container_class = Container
