"""Applications whose ``/readyz`` has something to say, for `tests/test_readyz_why.py`.

Run as ``python -m framework run tests.readyz_apps:<App>``. Every app serves ``/hello`` (at once)
and ``/slow`` (until the file named by ``READYZ_RELEASE`` exists, at most 30 s; it prints
``slow began`` first). The services print what the test waits on, one flushed line each.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
from dependency_injector import containers, providers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from framework import Application, Service, Settings
from framework.services import HttpService


async def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")


async def slow(request: Request) -> PlainTextResponse:
    print("slow began", flush=True)
    release = Path(os.environ.get("READYZ_RELEASE", "release"))
    with anyio.move_on_after(30):
        while not release.exists():
            await anyio.sleep(0.02)
    return PlainTextResponse("done")


api = Starlette(routes=[Route("/hello", hello), Route("/slow", slow)])


class Hung(Service):
    """health() awaits inside a shielded cancel scope: it never returns, cancelled or not."""

    async def health(self) -> bool:
        print("hung check began", flush=True)
        with anyio.CancelScope(shield=True):
            await anyio.sleep_forever()
        return True  # never reached


class TurnsFalse(Service):
    """health() is True twice, then False from its 3rd check on; prints each call's number."""

    def __init__(self) -> None:
        self.calls = 0

    async def health(self) -> bool:
        self.calls += 1
        print(f"turns-false check {self.calls}", flush=True)
        return self.calls < 3


class SaysDown(Service):
    """health() returns the string ``"down"``: not a bool."""

    async def health(self) -> Any:
        return "down"


class Crashes(Service):
    """run() raises a moment after the start (once the application is ready)."""

    async def run(self) -> None:
        print("crashes run began", flush=True)
        await anyio.sleep(0.5)
        raise RuntimeError("the queue went away")


def _container(**services: providers.Provider[Any]) -> type[containers.DeclarativeContainer]:
    settings = providers.Dependency(instance_of=Settings)
    attrs: dict[str, Any] = {
        "settings": settings,
        "http": providers.Singleton(
            HttpService, app=providers.Object(api), settings=settings.provided.http
        ),
        **services,
    }
    return type("Container", (containers.DeclarativeContainer,), attrs)


class HealthApp(Application):
    """Three services, three ways to fail a health check."""

    container_class = _container(
        hung=providers.Singleton(Hung),
        turns_false=providers.Singleton(TurnsFalse),
        says_down=providers.Singleton(SaysDown),
    )


class RestartApp(Application):
    """A service whose run() crashes (run it with ``services.crashes.restart = "on-failure"``)."""

    container_class = _container(crashes=providers.Singleton(Crashes))


class PlainApp(Application):
    """The HTTP service alone."""

    container_class = _container()
