"""What the HTTP tests share: a small Starlette app, an application around it, bounded waits."""

from __future__ import annotations

import http.client
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
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
from framework.services._http import ASGIApp
from tests._process import framework_env, with_sets


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


# -- real clients against a real process ----------------------------------------------------------

CLIENTS_APP = '''
"""Run by the real-client tests: `framework run clients_app:App` (or `uvicorn clients_app:api`)."""

import asyncio
import os

from dependency_injector import containers, providers
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute

from framework import Application, Service, Settings
from framework.services import HttpService


async def hello(request):
    return PlainTextResponse("hello")


async def big(request):  # 50 MB, for a client that never reads it
    return Response(b"x" * (50 * 1024 * 1024), media_type="application/octet-stream")


async def events(request):  # SSE: one event every 50 ms until the shutdown notice, then goodbye
    notice = request.scope["extensions"]["framework.shutdown"]

    async def stream():
        n = 0
        while not notice.is_set():
            yield f"data: tick {n}\\n\\n"
            n += 1
            await asyncio.sleep(0.05)
        yield "data: goodbye\\n\\n"
        print("stream ended", flush=True)

    return StreamingResponse(stream(), media_type="text/event-stream")


async def polite(websocket):  # says goodbye and closes (1001) once the shutdown notice is set
    notice = websocket.scope["extensions"]["framework.shutdown"]
    await websocket.accept()
    await websocket.send_text("hello")
    await notice.wait()
    await websocket.send_text("goodbye")
    await websocket.close(1001)
    print("polite handler closed", flush=True)


async def deaf(websocket):  # ignores the notice: only its receive() tells it
    await websocket.accept()
    await websocket.send_text("hello")
    message = await websocket.receive()
    print(f"deaf handler got {message['type']} {message.get('code')}", flush=True)


api = Starlette(
    routes=[
        Route("/hello", hello),
        Route("/big", big),
        Route("/events", events),
        WebSocketRoute("/polite", polite),
        WebSocketRoute("/deaf", deaf),
    ]
)


class Store(Service):
    """What the HTTP service depends on: its stop takes STORE_STOP_SECONDS (0.3) and says when
    it is done."""

    async def stop(self):
        await asyncio.sleep(float(os.environ.get("STORE_STOP_SECONDS", "0.3")))
        print("store stopped", flush=True)


def serve(store):  # the HTTP service depends on the store through this
    return api


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    store = providers.Singleton(Store)
    http = providers.Singleton(
        HttpService, app=providers.Callable(serve, store), settings=settings.provided.http
    )


class App(Application):
    container_class = Container
'''


def start_server(
    cwd: Path,
    port: int,
    *sets: str,
    bare_uvicorn: bool = False,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """`framework run clients_app:App` (or bare `uvicorn clients_app:api`) on ``port``, once
    ``/hello`` answers; its stdout and stderr go to ``cwd/stdout.txt`` and ``cwd/stderr.txt``."""
    (cwd / "clients_app.py").write_text(CLIENTS_APP)
    if bare_uvicorn:
        args = ["-m", "uvicorn", "clients_app:api", "--port", str(port), "--lifespan", "off"]
    else:
        sets = (f"http.port={port}", *sets)
        args = ["-m", "framework", "run", "clients_app:App", *with_sets(*sets)]
    with (cwd / "stdout.txt").open("wb") as out, (cwd / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, *args], cwd=cwd, env=framework_env(env), stdout=out, stderr=err
        )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if sock.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    proc.wait()
    raise AssertionError(f"the server did not answer: {(cwd / 'stderr.txt').read_text()[-3000:]}")


@dataclass
class Tally:
    """What keep-alive clients saw around a SIGTERM."""

    written: int = 0  # requests sent in full
    answered: int = 0  # ... and answered
    lost: int = 0  # ... and never answered (reset, closed, timed out)
    refused: int = 0  # connects refused once the listener had closed: not failures
    unsent: int = 0  # requests that could not be written (connection already closed by the server)
    closes: int = 0  # responses carrying `Connection: close`
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)  # why requests were lost
    lost_at: list[float] = field(default_factory=list)  # when (time.time())

    def add(self, other: Tally) -> None:
        for name in ("written", "answered", "lost", "refused", "unsent", "closes"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count
        self.lost_at += other.lost_at
        for error, count in other.errors.items():
            self.errors[error] = self.errors.get(error, 0) + count


def keep_alive_client(port: int, until: float, tally: Tally) -> None:
    """GET /hello in a loop on one keep-alive `http.client` connection (reconnecting when the
    server closes it) until a connect is refused or ``until`` (monotonic) passes."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        while time.monotonic() < until:
            fresh = conn.sock is None
            try:
                conn.request("GET", "/hello")
            except ConnectionRefusedError:
                tally.refused += 1
                return
            except OSError:
                tally.unsent += 1
                conn.close()
                continue
            tally.written += 1
            try:
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                tally.lost += 1
                why = f"{type(exc).__name__} on a {'new' if fresh else 'reused'} connection"
                tally.errors[why] = tally.errors.get(why, 0) + 1
                tally.lost_at.append(time.time())
                conn.close()
                continue
            tally.answered += 1
            tally.statuses[response.status] = tally.statuses.get(response.status, 0) + 1
            if (response.getheader("connection") or "").lower() == "close":
                tally.closes += 1
    finally:
        conn.close()


def sigterm_under_keep_alive(
    proc: subprocess.Popen[bytes], port: int, clients: int = 20, timeout: float = 30.0
) -> Tally:
    """``clients`` keep-alive loops; SIGTERM once each has been answered; wait for them and the
    exit (all bounded by ``timeout``). Returns the sum of what the clients saw."""
    until = time.monotonic() + timeout
    tallies = [Tally() for _ in range(clients)]
    threads = [
        threading.Thread(target=keep_alive_client, args=(port, until, t), daemon=True)
        for t in tallies
    ]
    for thread in threads:
        thread.start()
    while time.monotonic() < until and not all(t.answered >= 3 for t in tallies):
        time.sleep(0.01)
    proc.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join(max(0.0, until - time.monotonic()))
    proc.wait(max(0.1, until - time.monotonic()))
    total = Tally()
    for tally in tallies:
        total.add(tally)
    return total
