"""What the HTTP tests share: a small Starlette app, an application around it, bounded waits."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from dependency_injector import containers, providers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from framework import Application, Service, Settings
from framework.services import HttpService
from framework.services.http import ASGIApp


def api(journal: list[str] | None = None, *, fail_startup: bool = False) -> Starlette:
    """``/hello`` answers at once, ``/slow?s=N`` after N seconds; the lifespan writes to ``journal``."""
    journal = journal if journal is not None else []

    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    async def slow(request: Request) -> PlainTextResponse:
        await anyio.sleep(float(request.query_params.get("s", "0.5")))
        return PlainTextResponse("done")

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if fail_startup:
            raise RuntimeError("the database is unreachable")
        journal.append("startup")
        yield
        journal.append("shutdown")

    return Starlette(routes=[Route("/hello", hello), Route("/slow", slow)], lifespan=lifespan)


class Gate(Service):
    """A service whose start returns only once ``opened`` is set."""

    def __init__(self, opened: anyio.Event) -> None:
        self.opened = opened

    async def start(self) -> None:
        await self.opened.wait()


def app_class(asgi: ASGIApp, **services: providers.Provider[Any]) -> type[Application]:
    """An Application whose container has ``settings``, ``http`` serving ``asgi``, and ``services``."""
    settings = providers.Dependency(instance_of=Settings)
    attrs: dict[str, Any] = {
        "settings": settings,
        # providers.Object: the container deep-copies plain arguments, and an app must stay itself
        "http": providers.Singleton(
            HttpService, app=providers.Object(asgi), settings=settings.provided.http
        ),
        **services,
    }
    container = type("Container", (containers.DeclarativeContainer,), attrs)
    return type("App", (Application,), {"container_class": container})


async def wait_until(
    condition: Callable[[], bool], what: str, *, timeout: float = 10.0, every: float = 0.01
) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds."""
    with anyio.move_on_after(timeout):
        while not condition():
            await anyio.sleep(every)
        return
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


async def fetch(client: httpx.AsyncClient, url: str, results: list[int | str]) -> None:
    """GET ``url``; append the status code, or the name of the error."""
    try:
        response = await client.get(url)
    except httpx.HTTPError as exc:
        results.append(type(exc).__name__)
    else:
        results.append(response.status_code)


SIGTERM_APP = '''
"""Run by the SIGTERM test: `framework run sigterm_app:App`."""

from contextlib import asynccontextmanager

import anyio
from dependency_injector import containers, providers
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from framework import Application, Settings
from framework.services import HttpService

arrived = 0


async def slow(request):
    global arrived
    arrived += 1
    await anyio.sleep(0.3)
    return PlainTextResponse("done")


async def arrivals(request):
    return PlainTextResponse(str(arrived))


@asynccontextmanager
async def lifespan(app):
    yield
    print(f"lifespan shutdown: arrived={arrived}", flush=True)


api = Starlette(routes=[Route("/slow", slow), Route("/arrivals", arrivals)], lifespan=lifespan)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    http = providers.Singleton(
        HttpService, app=providers.Object(api), settings=settings.provided.http
    )


class App(Application):
    container_class = Container
'''
