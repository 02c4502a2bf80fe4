"""The HTTP service's drain in-process, on real loopback sockets: the shutdown notice in the scope,
`Connection: close` once shutdown began, the accept queue served, the lame-duck window.

uvicorn runs on asyncio; the HTTP protocol is parametrized (h11, httptools) where it matters.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from framework import Application
from framework._engine.readiness import ShutdownNotice
from framework.services import HttpService, HttpSettings
from framework.services._http import ASGIApp, HttpServiceError

from ._http_helpers import app_class, wait_until

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def recording_app(seen: list[Any]) -> ASGIApp:
    """Answers ``hello``; records the shutdown notice of each http scope in ``seen``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        seen.append(scope["extensions"]["framework.shutdown"])
        headers = [(b"content-length", b"5")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    return app


async def test_standalone_the_notice_is_the_services_own_set_when_stop_begins() -> None:
    """Without an application, each scope carries the service's own notice: unset while serving,
    set once stop() has begun."""
    seen: list[Any] = []
    http = HttpService(recording_app(seen), HttpSettings(port=0))
    await http.start()
    try:
        async with httpx.AsyncClient(base_url=http.url) as client:
            response = await client.get("/")
    finally:
        await http.stop()
    assert response.text == "hello"
    assert seen == [http.notice]
    assert isinstance(seen[0], ShutdownNotice)
    assert seen[0].is_set()
    assert "connection" not in response.headers  # keep-alive while serving


@pytest.mark.parametrize("protocol", ["h11", "httptools"])
async def test_from_the_first_moment_of_shutdown_responses_say_connection_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """In an application, the notice is the readiness's: during the shutdown delay it is set and
    every response, the app's and the probes', carries `Connection: close`."""
    monkeypatch.chdir(tmp_path)
    seen: list[Any] = []
    cls = app_class(recording_app(seen))
    overrides = {"http.port": 0, "http.http": protocol, "lifecycle.shutdown_delay": 1.0}
    app: Application = cls(config_dir=tmp_path, overrides=overrides)
    http = app.container.http()
    got: dict[str, httpx.Response] = {}

    async def probe() -> None:
        await wait_until(lambda: http.notice.is_set(), "the shutdown notice")
        async with httpx.AsyncClient(base_url=http.url) as client:
            got["during"] = await client.get("/")
            got["readyz"] = await client.get("/readyz")

    async with anyio.create_task_group() as tg:
        async with app.running(), httpx.AsyncClient(base_url=http.url) as client:
            before = await client.get("/")
            tg.start_soon(probe)
    during, readyz = got["during"], got["readyz"]
    assert "connection" not in before.headers
    assert (during.status_code, during.headers["connection"]) == (200, "close")
    assert (readyz.status_code, readyz.headers["connection"]) == (503, "close")
    assert seen[0] is seen[1] is http.notice is app.readiness.shutdown
    assert app.exit_code == 0


@pytest.mark.parametrize("protocol", ["h11", "httptools"])
async def test_a_response_begun_before_shutdown_and_sent_after_says_connection_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    """A request that reached the app before the shutdown notice, answered after it, gets
    `Connection: close` too, although the app was handed uvicorn's own unwatched ``send``."""
    monkeypatch.chdir(tmp_path)
    sends: list[Any] = []
    arrived = anyio.Event()

    async def slow_app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        sends.append(send)
        arrived.set()
        await scope["extensions"]["framework.shutdown"].wait()
        headers = [(b"content-length", b"5"), (b"connection", b"keep-alive")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"hello"})

    cls = app_class(slow_app)
    overrides = {"http.port": 0, "http.http": protocol, "lifecycle.shutdown_delay": 1.0}
    app: Application = cls(config_dir=tmp_path, overrides=overrides)
    http = app.container.http()
    got: dict[str, httpx.Response] = {}

    async def slow() -> None:
        async with httpx.AsyncClient(base_url=http.url) as client:
            got["slow"] = await client.get("/")

    async with anyio.create_task_group() as tg:
        async with app.running():
            tg.start_soon(slow)
            with anyio.fail_after(5):
                await arrived.wait()
    response = got["slow"]
    assert (response.status_code, response.text) == (200, "hello")
    assert "close" in response.headers["connection"]
    assert hasattr(sends[0].__self__, "response_started")  # uvicorn's cycle, not a wrapper
    assert app.exit_code == 0


@pytest.mark.parametrize("protocol", ["h11", "httptools"])
async def test_connections_in_the_accept_queue_are_served_not_reset(protocol: str) -> None:
    """Connections the kernel accepted but the server had not yet (the event loop was busy) when
    stop() began are accepted and answered with `Connection: close`, not reset."""
    http = HttpService(recording_app([]), HttpSettings(port=0, http=protocol))
    await http.start()
    clients = []
    try:
        for _ in range(5):  # without yielding to the event loop: they stay in the accept queue
            sock = socket.create_connection(("127.0.0.1", http.port), timeout=5)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            clients.append(sock)
        with anyio.fail_after(10):
            await http.stop()
        answers = [_read_all(sock) for sock in clients]
    finally:
        for sock in clients:
            sock.close()
    for answer in answers:
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert b"connection: close" in answer.lower()
        assert answer.endswith(b"hello")
    assert http.drained == 5


def _read_response(sock: socket.socket) -> bytes:
    """One response of `recording_app` (it ends with ``hello``), bounded."""
    data = b""
    for _ in range(100):
        data += sock.recv(65536)
        if data.endswith(b"hello"):
            break
    return data


def _read_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (bounded by the socket's timeout and a size cap)."""
    data = b""
    for _ in range(100):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


async def test_an_idle_keep_alive_connection_is_served_in_the_lame_duck_window() -> None:
    """A keep-alive connection idle when the drain begins stays open for the lame-duck window: a
    request written on it then is answered with `Connection: close`."""
    http = HttpService(recording_app([]), HttpSettings(port=0))
    await http.start()
    sock = socket.create_connection(("127.0.0.1", http.port), timeout=5)
    try:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        first = await anyio.to_thread.run_sync(_read_response, sock)
        async with anyio.create_task_group() as tg:
            tg.start_soon(http.stop)
            await anyio.sleep(0.2)  # the drain has begun; the connection is idle
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            second = await anyio.to_thread.run_sync(_read_all, sock)
    finally:
        sock.close()
    assert first.startswith(b"HTTP/1.1 200") and b"connection" not in first.lower()
    assert second.startswith(b"HTTP/1.1 200")
    assert b"connection: close" in second.lower()


async def test_http_loop_uvloop_on_another_loop_is_a_clear_start_error() -> None:
    """``http.loop = "uvloop"`` while the application's loop is asyncio's: start() fails naming
    the setting and what to do, before binding anything."""
    http = HttpService(recording_app([]), HttpSettings(port=0, loop="uvloop"))
    with pytest.raises(HttpServiceError) as caught:
        await http.start()
    await http.stop()
    assert "http.loop is 'uvloop' but the event loop is asyncio" in str(caught.value)
    assert "set http.loop to 'auto' or 'asyncio'" in str(caught.value)


async def test_a_response_says_connection_close_once() -> None:
    """A request whose uvicorn cycle already carries `Connection: close` in its default headers
    (it began before the shutdown notice) and is answered through the watched ``send`` after it
    does not get the header twice (a client reads "close, close" as a value it does not know)."""

    class Cycle:
        def __init__(self) -> None:
            self.default_headers = [(b"connection", b"close")]
            self.messages: list[Any] = []

        async def send(self, message: Any) -> None:
            self.messages.append(message)

    http = HttpService(recording_app([]), HttpSettings(port=0))
    http.notice.set()
    cycle = Cycle()

    async def receive() -> Any:
        return {"type": "http.request", "body": b""}

    await http.asgi({"type": "http", "path": "/", "headers": []}, receive, cycle.send)
    start = cycle.messages[0]
    assert start["type"] == "http.response.start"
    assert [name for name, _ in start["headers"]].count(b"connection") == 0
