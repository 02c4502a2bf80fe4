"""Testing kit: run an application in-process, spy on its lifecycle, catch leaks.

```python
from framework.testing import run_app

async def test_orders(tmp_path):
    overrides = {"database.url": f"sqlite+aiosqlite:///{tmp_path}/test.db"}
    async with run_app(App, overrides=overrides) as harness:
        response = await harness.client().get("/orders")
        assert response.status_code == 200
    assert harness.events.stopped() == ["http", "worker", "db"]
```

`run_app` starts the application (real services, real loop), hands back a `Harness` with an HTTP
client bound to the app's `HttpService` (through its real socket, so responses stream; or
in-process), websocket connections, an `EventSpy`, and checks for leaks once everything has
stopped: tasks still running, database connections still checked out, sockets still listening. A
leak fails the test with the names of what leaked. The container is unwired after the stop.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
import sniffio
from dependency_injector import providers as di_providers

from framework._engine.events import (
    Event,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStopFailed,
    ServiceStopped,
)
from framework._runtime.application import Application
from framework._runtime.discovery import discover_graph
from framework._runtime.wiring import unwire_container
from framework.testing._simulate import simulate_termination

if TYPE_CHECKING:
    import httpx

__all__ = (
    "EventSpy",
    "Harness",
    "LeakError",
    "run_app",
    "run_app_sync",
    "simulate_termination",
)

A = TypeVar("A", bound=Application)


class LeakError(AssertionError):
    """Something the application started was still alive after it stopped."""


@dataclass
class EventSpy:
    """Every lifecycle event, in order, with helpers for the usual assertions."""

    events: list[Event] = field(default_factory=list)

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def of_type(self, *types: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, types)]

    def started(self) -> list[str]:
        """Services in the order they finished starting successfully."""
        return [e.service for e in self.of_type(ServiceStarted)]

    def stopped(self) -> list[str]:
        """Services in the order they finished stopping (successfully or not)."""
        return [e.service for e in self.of_type(ServiceStopped, ServiceStopFailed)]

    def failed(self) -> list[str]:
        return [e.service for e in self.of_type(ServiceStartFailed, ServiceStopFailed)]


@dataclass
class Harness(Generic[A]):
    """A running application under test."""

    app: A
    events: EventSpy
    _clients: list[Any] = field(default_factory=list)

    def service(self, name: str) -> Any:
        """The instance of service ``name``."""
        assert self.app.lifecycle is not None, "the application is not started"
        return self.app.lifecycle.records[name].service

    def client(
        self, service: str | None = None, *, in_process: bool = False, **kwargs: Any
    ) -> httpx.AsyncClient:
        """An httpx client for the HTTP service (probes included), closed by the harness.

        It connects to the service's real socket, so ``client.stream(...)`` streams (an endless
        server-sent event stream can be read line by line and left). ``in_process=True`` calls the
        ASGI app directly instead (no socket; each response is buffered whole). ``service`` names
        the HttpService when the app has several; ``kwargs`` go to ``httpx.AsyncClient``.
        """
        import httpx

        http = self._http_service(service)
        if in_process:
            transport = httpx.ASGITransport(app=http.asgi)
            client = httpx.AsyncClient(transport=transport, base_url="http://testserver", **kwargs)
        else:
            client = httpx.AsyncClient(base_url=self.url(service), **kwargs)
        self._clients.append(client)
        return client

    def url(self, service: str | None = None, *, scheme: str = "http") -> str:
        """The base URL of the HTTP service's real socket (``scheme="ws"`` for websockets)."""
        http = self._http_service(service)
        host = _loopback(http.settings.host)
        return f"{scheme}://{host}:{http.port}"

    def websocket(self, path: str, service: str | None = None, **kwargs: Any) -> Any:
        """``async with harness.websocket("/ws") as ws:``: a websocket to the real socket.

        A ``websockets`` client connection (``await ws.send(...)``, ``await ws.recv()``);
        ``kwargs`` go to ``websockets.asyncio.client.connect``. Needs ``pip install websockets``.
        """
        try:
            from websockets.asyncio.client import connect
        except ImportError:
            raise ImportError(
                "harness.websocket() needs the websockets package: pip install websockets"
            ) from None
        return connect(self.url(service, scheme="ws") + path, **kwargs)

    def _http_service(self, name: str | None) -> Any:
        from framework.services._http import HttpService

        assert self.app.lifecycle is not None, "the application is not started"
        found = {
            n: r.service
            for n, r in self.app.lifecycle.records.items()
            if isinstance(r.service, HttpService)
        }
        if name is not None:
            if name not in found:
                raise LookupError(f"no HttpService named {name!r} (HTTP services: {sorted(found)})")
            return found[name]
        if len(found) != 1:
            raise LookupError(
                f"name the HTTP service: client('<name>') (HTTP services: {sorted(found)})"
            )
        return next(iter(found.values()))

    async def _close_clients(self) -> None:
        for client in self._clients:
            await client.aclose()
        self._clients.clear()


def override_providers(app: Application, replacements: Mapping[str, Any]) -> None:
    """Swap container providers before start: a provider, or any object (wrapped in ``Object``)."""
    for name, replacement in replacements.items():
        if name not in app.container.providers:
            known = ", ".join(app.container.providers)
            raise LookupError(f"the container has no provider {name!r} (providers: {known})")
        if not isinstance(replacement, di_providers.Provider):
            replacement = di_providers.Object(replacement)
        app.container.providers[name].override(replacement)
    app.graph = discover_graph(app._providers)


@asynccontextmanager
async def run_app(
    app_class: type[A],
    *,
    overrides: Mapping[str, Any] | None = None,
    providers: Mapping[str, Any] | None = None,
    config_dir: str | None = None,
    env: str | None = None,
    check_leaks: bool = True,
    free_port: bool = True,
) -> AsyncIterator[Harness[A]]:
    """Start ``app_class`` in-process; stop it on exit; then check for leaks.

    ``overrides`` are settings (dotted keys, as ``--set``); ``providers`` swap container providers
    (e.g. a service for a fake). With ``free_port`` the HTTP port defaults to 0 (any free port).
    """
    settings = {"http.port": 0} if free_port else {}
    settings.update(overrides or {})
    app = app_class(config_dir=config_dir, env=env, overrides=settings)
    if providers:
        override_providers(app, providers)
    spy = EventSpy()
    app.subscribe(spy)
    harness = Harness(app, spy)
    before = _tasks()
    await app.start()
    try:
        yield harness
    finally:
        try:
            await harness._close_clients()
        finally:
            await app.stop()
    unwire_container(app.container)
    if check_leaks:
        await _check_leaks(app, before)


@contextmanager
def run_app_sync(
    app_class: type[A], *, backend: str = "asyncio", **kwargs: Any
) -> Iterator[Harness[A]]:
    """`run_app` for synchronous tests: the application runs on an event loop in a thread.

    Call async things through ``portal.call`` on the harness's ``portal`` attribute.
    """
    from anyio.from_thread import start_blocking_portal

    with (
        start_blocking_portal(backend) as portal,
        portal.wrap_async_context_manager(run_app(app_class, **kwargs)) as harness,
    ):
        harness.portal = portal  # type: ignore[attr-defined]
        yield harness


def _tasks() -> set[Any]:
    if sniffio.current_async_library() != "asyncio":
        return set()  # trio's structured concurrency already forbids stray tasks
    import asyncio

    return set(asyncio.all_tasks())


async def _check_leaks(app: Application, before: set[Any]) -> None:
    leaks: list[str] = []
    if sniffio.current_async_library() == "asyncio":
        import asyncio

        for _ in range(10):  # let tasks that are finishing finish
            stray = {
                t
                for t in asyncio.all_tasks() - before
                if not t.done() and not _is_test_runner(t) and t is not asyncio.current_task()
            }
            if not stray:
                break
            await anyio.sleep(0.01)
        leaks += [f"task {t.get_name()!r} ({t.get_coro()!r}) still running" for t in stray]
    if app.lifecycle is not None:
        for name, rec in app.lifecycle.records.items():
            service = rec.service
            cut = getattr(service, "cut_off", 0)
            if isinstance(cut, int) and cut:
                leaks.append(f"service {name!r}: {cut} connection(s) or request(s) cut off at stop")
            port = getattr(service, "port", None)
            host = getattr(getattr(service, "settings", None), "host", "127.0.0.1")
            if isinstance(port, int) and port > 0 and _listening(host, port):
                leaks.append(f"service {name!r}: {host}:{port} still accepts connections")
    if leaks:
        raise LeakError("leaked after stop: " + "; ".join(leaks))


def _is_test_runner(task: Any) -> bool:
    """Tasks of pytest's async runners (anyio's among them), which are not the app's."""
    qualname = getattr(task.get_coro(), "__qualname__", "")
    return str(qualname).startswith("TestRunner.")


def _loopback(host: str) -> str:
    """Where to connect for a server bound to ``host``: loopback for a wildcard address."""
    if host in ("0.0.0.0", ""):  # noqa: S104 (a check, not a bind)
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _listening(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        wildcard = host in ("0.0.0.0", "::")  # noqa: S104 (a check, not a bind)
        return sock.connect_ex(("127.0.0.1" if wildcard else host, port)) == 0
