"""The ASGI app uvicorn serves: the probes and metrics, then the user's app, each request tracked.

A drain cuts off the requests that outrun its bound by cancelling their asyncio tasks: uvicorn's
own set of them (`framework._compat.uvicorn.request_tasks`), and those of requests this front app
watched itself. A request cut off before its response started is answered 503.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

from framework.services._cutoff import CURRENT_REQUEST, RequestWork

if TYPE_CHECKING:
    from framework.services._http._service import HttpService

__all__ = (
    "CLOSE",
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
CLOSE = (b"connection", b"close")
"""The ``Connection: close`` header: the connection closes after this response."""
NOTICE = "framework.shutdown"
"""The key of the shutdown notice in ``scope["extensions"]``."""


class Requests:
    """The requests being handled, so that a drain can count them and cut them off.

    Tasks rather than a cancel scope per request: HttpService runs only on asyncio, and a scope
    per request costs more than the rest of the front app together. uvicorn keeps the set of its
    request tasks anyway (`server_tasks`); only a request whose ``send`` is watched is added to
    `tasks` as well. Nothing is counted per request until the drain begins.
    """

    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()
        self.server_tasks: set[asyncio.Task[Any]] = set()
        self.cut: set[asyncio.Task[Any]] = set()
        self.counting: set[asyncio.Task[Any]] = set()  # counted by a done callback
        self.draining = False
        self.drained = 0
        self.cut_off = 0

    def __len__(self) -> int:
        return len(self.tasks | self.server_tasks)

    def begin_drain(self) -> None:
        """From now on count the requests that finish: those running now, and (watched) later."""
        if self.draining:
            return
        self.draining = True
        self.counting = self.server_tasks - self.tasks
        for task in self.counting:
            task.add_done_callback(self.finished)

    def finished(self, task: asyncio.Task[Any] | None) -> None:
        """A request finished during the drain: drained, or cut off."""
        if task in self.cut:
            self.cut.discard(task)
        else:
            self.drained += 1

    def cut_off_all(self) -> None:
        self.begin_drain()
        for task in list((self.tasks | self.server_tasks) - self.cut):
            if not task.done():
                self.cut.add(task)
                task.cancel()
                self.cut_off += 1

    def was_cut(self) -> bool:
        """Whether the current task's cancellation is (only) a cut-off: the caller answers."""
        task = asyncio.current_task()
        return task is not None and task in self.cut and task.uncancel() == 0


class Front:
    """What uvicorn serves: the probes and metrics, then the user's app with each request tracked.

    Its ``__call__`` runs for every request, so it is kept flat: one coroutine frame, the probes
    looked up in a dict, uvicorn's own ``send`` handed on unless something has to watch it
    (`watch`: the metrics are on, the shutdown notice is set, the drain began, or the caller is
    not the service's own uvicorn but, say, an ASGI test client).
    """

    def __init__(self, service: HttpService, *, served: bool = False) -> None:
        from framework._compat.uvicorn import closes_after, response_started

        self.response_started = response_started
        self.closes_after = closes_after
        self.service = service
        self.app = service.app
        self.settings = settings = service.settings
        self.requests = service._requests
        self.metrics = service._metrics
        self.notice = service.notice  # the application's once the service is attached to one
        self.watch = not served or self.metrics is not None
        self.limit = settings.limit_concurrency
        self.lifespan_failed: str | None = None
        """Why the app's lifespan shutdown failed (``lifespan.shutdown.failed``, or it raised)."""
        self.connections = service._plan.connections
        self.probes: dict[str, Callable[[Send, bool], Awaitable[None]]] = {}
        paths = [(settings.livez_path, self._livez), (settings.readyz_path, self._readyz)]
        if settings.metrics_path is not None:
            paths.append((settings.metrics_path, self._metrics))
        for path, probe in paths:
            self.probes[path] = probe
            if settings.root_path:  # uvicorn puts root_path in front of the path
                self.probes[settings.root_path + path] = probe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":  # lifespan
            await self._lifespan(scope, receive, send)
            return
        notice = self.notice
        extensions = scope.get("extensions")
        if extensions is None:
            scope["extensions"] = {NOTICE: notice}
        else:
            extensions[NOTICE] = notice
        if kind == "http":
            probe = self.probes.get(scope["path"])
            if probe is not None:  # answered here, before any limit: never refused for load
                # once shutdown began: `Connection: close`, once (uvicorn's cycle may say it too)
                await probe(send, notice.is_set() and not self.closes_after(send, CLOSE))
                return
        if self.limit is not None and self._over_limit(self.limit):
            await refuse(kind, send, extensions is not None and DENIAL in extensions)
            return
        work = RequestWork()  # this task's own context: its worker threads see the same object
        CURRENT_REQUEST.set(work)
        if self.watch:
            await self._watched(scope, receive, send, work)
            return
        try:  # uvicorn's own send; its task is in uvicorn's set, which a drain cuts off
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            if not self.requests.was_cut():
                raise  # not (only) our cut-off: the server itself is going away
            # only uvicorn calls it unwatched: ``send`` is its own (a request cycle's)
            if kind == "http" and not self.response_started(send):
                work.cut_off = True  # first: a worker thread still running must not commit
                close = not self.closes_after(send, CLOSE)  # the header once, not twice
                await answer(send, 503, _CUT_OFF_BODY, close=close)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan, watched: a shutdown that fails is remembered for `stop()`, which
        then fails (uvicorn only logs it)."""
        shutting_down = False

        async def receive_watched() -> Message:
            nonlocal shutting_down
            message = await receive()
            shutting_down = shutting_down or message.get("type") == "lifespan.shutdown"
            return message

        async def send_watched(message: Message) -> None:
            if message.get("type") == "lifespan.shutdown.failed":
                text = str(message.get("message") or "").strip()  # Starlette: a traceback
                self.lifespan_failed = text.splitlines()[-1] if text else "no reason given"
            await send(message)

        try:
            await self.app(scope, receive_watched, send_watched)
        except Exception as exc:
            if shutting_down and self.lifespan_failed is None:
                self.lifespan_failed = f"{type(exc).__name__}: {exc}"
            raise

    def _over_limit(self, limit: int) -> bool:
        """``http.limit_concurrency``: more connections open, or as many requests already in
        flight (this one not counted). Enforced here, after the probes, not by uvicorn: its own
        check refuses the probes too, so a busy pool of clients would look like a dead pod."""
        return len(self.connections) > limit or len(self.requests) - 1 >= limit

    async def _livez(self, send: Send, close: bool) -> None:
        await answer(send, 200, b"alive\n", close=close)

    async def _metrics(self, send: Send, close: bool) -> None:
        assert self.metrics is not None
        await answer(send, 200, *self.metrics.render(), close=close)

    async def _readyz(self, send: Send, close: bool) -> None:
        """200 or 503, with a JSON body that says why (`HttpService.readiness_report`)."""
        service = self.service
        code = 200 if service.ready else 503
        body = json.dumps(service.readiness_report()).encode() + b"\n"
        await answer(send, code, body, "application/json", close=close)

    async def _watched(self, scope: Scope, receive: Receive, send: Send, work: RequestWork) -> None:
        """A request tracked here, an HTTP one with its ``send`` watched: for the metrics, for
        ``Connection: close`` once shutdown began, for whether a response started."""
        http = scope["type"] == "http"
        notice = self.notice
        status = 500  # what uvicorn answers when the app fails before responding
        responded = False
        closes_after = self.closes_after

        async def send_watched(message: Message) -> None:
            nonlocal status, responded
            if message["type"] == "http.response.start":
                status, responded = int(message["status"]), True
                # shutdown began: keep-alive clients move on (unless uvicorn's request cycle
                # says so already: `close_responses` gave it the header)
                if notice.is_set() and not closes_after(send, CLOSE):
                    message = closing(message)
            await send(message)

        metrics = self.metrics if http else None
        task = asyncio.current_task()
        assert task is not None
        requests = self.requests
        requests.tasks.add(task)
        if metrics is not None:
            metrics.in_flight.inc()
        began = time.perf_counter()
        try:
            try:
                await self.app(scope, receive, send_watched if http else send)
            except asyncio.CancelledError:
                if not requests.was_cut():
                    raise  # not (only) our cut-off: the server itself is going away
                if http and not responded:
                    work.cut_off = True  # first: a worker thread still running must not commit
                    await answer(send, 503, _CUT_OFF_BODY, close=not closes_after(send, CLOSE))
                    status = 503
        finally:
            requests.tasks.discard(task)
            if requests.draining and task not in requests.counting:
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
        headers.append(CLOSE)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


DENIAL = "websocket.http.response"
"""The ASGI extension with which a websocket handshake is refused with an HTTP response."""


async def refuse(kind: str, send: Send, denial: bool = False) -> None:
    """Over ``http.limit_concurrency``: 503 (as uvicorn answers it), also to a websocket
    handshake where the server can send one (``denial``); else the websocket is closed before it
    is accepted (1013: try again later; a client sees the handshake refused)."""
    if kind == "http":
        await answer(send, 503, b"Service Unavailable", close=True)
    elif denial:
        body = b"Service Unavailable"
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode("latin-1")),
        ]
        await send({"type": "websocket.http.response.start", "status": 503, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
    else:
        await send({"type": "websocket.close", "code": 1013})


def closing(message: Message) -> Message:
    """``message`` (an ``http.response.start``) with ``Connection: close`` as its only connection
    header: uvicorn (h11 and httptools alike) then closes the connection after the response."""
    headers = [
        (name, value)
        for name, value in message.get("headers", ())
        if bytes(name).lower() != b"connection"
    ]
    headers.append(CLOSE)
    return {**message, "headers": headers}
