"""An application for the termination simulator's tests (`tests/test_simulate.py`): an HTTP
service, and a service whose ``stop()`` blocks the event loop for ``hang.seconds``."""

from __future__ import annotations

import time

from dependency_injector import containers, providers
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from framework import Application, Service, Settings
from framework.services import HttpService


class HangSettings(BaseModel):
    seconds: float = 0.0


class SimSettings(Settings):
    hang: HangSettings = HangSettings()


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


def create_api() -> Starlette:
    return Starlette(routes=[Route("/hello", hello)])


class Hanging(Service):
    """Stops at once, or after blocking the loop in synchronous code (a stuck stop)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        time.sleep(self.seconds)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=SimSettings)
    http = providers.Singleton(
        HttpService, app=providers.Callable(create_api), settings=settings.provided.http
    )
    hang = providers.Singleton(Hanging, seconds=settings.provided.hang.seconds)


class App(Application):
    container_class = Container
    settings_class = SimSettings
