"""A plain ASGI app served both by bare uvicorn and by `HttpService`.

- ``app``: ``/`` answers ``hello``; ``/slow?id=N`` sleeps `SLOW_SECONDS` and answers ``ok``, first
  appending ``N`` to the journal file named by ``$BENCH_JOURNAL`` (so a benchmark knows which
  requests reached the app); ``/readyz`` answers 200, as a naive app without a readiness flip would.

Only the standard library is imported: both servers load the same, and no more.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

SLOW_SECONDS = 0.2

_journal_fd: int | None = None


def _journal(line: str) -> None:
    global _journal_fd
    if _journal_fd is None:
        path = os.environ.get("BENCH_JOURNAL")
        if not path:
            return
        _journal_fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(_journal_fd, line.encode() + b"\n")


async def _answer(send: Callable[[Message], Awaitable[None]], status: int, body: bytes) -> None:
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    path = scope["path"]
    if path == "/slow":
        query = scope.get("query_string", b"").decode()
        _journal(query.partition("id=")[2].partition("&")[0])
        await asyncio.sleep(SLOW_SECONDS)
        await _answer(send, 200, b"ok\n")
    elif path == "/":
        await _answer(send, 200, b"hello\n")
    elif path == "/readyz":
        await _answer(send, 200, b"ready\n")
    else:
        await _answer(send, 404, b"not found\n")
