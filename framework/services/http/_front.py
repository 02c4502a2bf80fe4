"""The ASGI app uvicorn serves: the probes and metrics, then the user's app, each request tracked.

Requests are tracked by their asyncio task so that a drain can cut off those that outrun its bound:
they are cancelled and answered 503 when no response had started.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from framework.readiness import ShutdownNotice
    from framework.services.http._service import HttpService

__all__ = (
    "NOTICE",
    "ASGIApp",
    "Front",
    "Message",
    "Receive",
    "Requests",
    "Scope",
    "Send",
    "answer",
)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
"""An ASGI 3 application (Starlette, FastAPI, or a plain ``async def app(scope, receive, send)``)."""

_CUT_OFF_BODY = b"cut off: the server is shutting down\n"
_CLOSE = (b"connection", b"close")
NOTICE = "framework.shutdown"
"""The key of the shutdown notice in ``scope["extensions"]``."""


class Requests:
    """The requests being handled (their asyncio tasks), so that a drain can cut them off.

    Tasks rather than a cancel scope per request: HttpService runs only on asyncio, and a scope
    per request costs more than the rest of the front app together.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.cut: set[asyncio.Task[Any]] = set()
        self.draining = False
        self.drained = 0
        self.cut_off = 0

    def __len__(self) -> int:
        return len(self.tasks)

    def finished(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task in self.cut:
            self.cut.discard(task)
        elif self.draining:
            self.drained += 1

    def cut_off_all(self) -> None:
        for task in list(self.tasks - self.cut):
            self.cut.add(task)
            task.cancel()
            self.cut_off += 1


class Front:
    """What uvicorn serves: the probes and metrics, then the user's app with each request tracked."""

    def __init__(self, service: HttpService) -> None:
        self.service = service
        self.app = service.app
        self.settings = service.settings
        self.requests = service._requests
        self.metrics = service._metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):  # lifespan
            await self.app(scope, receive, send)
            return
        notice = self.service.notice
        extensions = scope.get("extensions")
        if extensions is None:
            scope["extensions"] = extensions = {}
        extensions[NOTICE] = notice
        if kind == "http":
            path = local_path(scope)
            if path == self.settings.livez_path:
                await answer(send, 200, b"alive\n", close=notice.is_set())
                return
            if path == self.settings.readyz_path:
                await self._readyz(send, close=notice.is_set())
                return
            if self.metrics is not None and path == self.settings.metrics_path:
                await answer(send, 200, *self.metrics.render(), close=notice.is_set())
                return
            # uvicorn's own send, unwrapped when nothing needs to watch it: its request cycle says
            # whether a response started; cycles begun before the shutdown notice are closed by
            # `close_responses`, later ones are watched (``Connection: close``)
            cycle = getattr(send, "__self__", None)
            if (
                self.metrics is not None
                or notice.is_set()
                or not hasattr(cycle, "response_started")  # not uvicorn: an ASGI test client
            ):
                await self._watched(scope, receive, send, notice)
                return
        else:
            cycle = None
        await self._tracked(scope, receive, send, cycle)

    async def _tracked(self, scope: Scope, receive: Receive, send: Send, cycle: Any) -> None:
        """A websocket, or an HTTP request on uvicorn's ``cycle`` that nothing watches."""
        task = asyncio.current_task()
        assert task is not None
        requests = self.requests
        requests.tasks.add(task)
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if task not in requests.cut or task.uncancel() > 0:
                raise  # not (only) our cut-off: the server itself is going away
            if cycle is not None and not cycle.response_started:
                await answer(send, 503, _CUT_OFF_BODY, close=True)
        finally:
            requests.finished(task)

    async def _readyz(self, send: Send, *, close: bool) -> None:
        service = self.service
        code = 200 if service.ready else 503
        if self.settings.readyz_details:
            body = json.dumps(service.readiness_report()).encode() + b"\n"
            await answer(send, code, body, "application/json", close=close)
        else:
            await answer(send, code, f"{service.status.value}\n".encode(), close=close)

    async def _watched(
        self, scope: Scope, receive: Receive, send: Send, notice: ShutdownNotice
    ) -> None:
        """An HTTP request with its ``send`` watched: for the metrics, for ``Connection: close``
        once shutdown began, for whether a response started."""
        status = 500  # what uvicorn answers when the app fails before responding
        responded = False

        async def send_watched(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
                if notice.is_set():  # shutdown began: keep-alive clients move on
                    message = closing(message)
            await send(message)

        metrics = self.metrics
        task = asyncio.current_task()
        assert task is not None
        requests = self.requests
        requests.tasks.add(task)
        if metrics is not None:
            metrics.in_flight.inc()
        began = time.perf_counter()
        try:
            try:
                await self.app(scope, receive, send_watched)
            except asyncio.CancelledError:
                if task not in requests.cut or task.uncancel() > 0:
                    raise  # not (only) our cut-off: the server itself is going away
                if not responded:
                    await answer(send, 503, _CUT_OFF_BODY, close=True)
                    status = 503
        finally:
            requests.finished(task)
            if metrics is not None:
                metrics.observe(scope, status, time.perf_counter() - began)


async def answer(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    close: bool = False,
) -> None:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"content-length", str(len(body)).encode("latin-1")),
        (b"cache-control", b"no-store"),
    ]
    if close:
        headers.append(_CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def closing(message: Message) -> Message:
    """``message`` (an ``http.response.start``) with ``Connection: close`` as its only connection
    header: uvicorn (h11 and httptools alike) then closes the connection after the response."""
    headers = [
        (name, value)
        for name, value in message.get("headers", ())
        if bytes(name).lower() != b"connection"
    ]
    headers.append(_CLOSE)
    return {**message, "headers": headers}


def local_path(scope: Scope) -> str:
    """The request path without the ``root_path`` prefix uvicorn includes in it."""
    path = str(scope.get("path", ""))
    root = str(scope.get("root_path", ""))
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    return path
