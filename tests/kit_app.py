"""An application for the testing-kit tests: an endless event stream, a websocket echo, and a
greeter that tests replace."""

from __future__ import annotations

from collections.abc import AsyncIterator

import anyio
from dependency_injector import containers, providers
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from framework import Application, Settings
from framework.services import HttpService


class Greeter:
    def greet(self, name: str) -> str:
        return f"hello {name}"


def create_api(greeter: Greeter) -> Starlette:
    async def hello(request: Request) -> PlainTextResponse:
        return PlainTextResponse(greeter.greet(request.query_params.get("name", "you")))

    async def events(request: Request) -> StreamingResponse:
        async def forever() -> AsyncIterator[str]:
            n = 0
            while True:  # endless: ends when the client leaves
                yield f"data: {n}\n\n"
                n += 1
                await anyio.sleep(0.01)

        return StreamingResponse(forever(), media_type="text/event-stream")

    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        async for text in websocket.iter_text():
            await websocket.send_text(f"echo {text}")

    return Starlette(
        routes=[Route("/hello", hello), Route("/events", events), WebSocketRoute("/ws", echo)]
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    greeter = providers.Singleton(Greeter)
    http = providers.Singleton(
        HttpService,
        app=providers.Callable(create_api, greeter=greeter),
        settings=settings.provided.http,
    )


class App(Application):
    container_class = Container
