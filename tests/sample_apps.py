"""Applications driven by settings, for in-process and subprocess tests.

``behaviour`` settings decide what each service does; every step is appended to a journal file
(one line per event, flushed at once) so a test can read the order after the process is gone.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import anyio
from dependency_injector import containers, providers
from loguru import logger
from pydantic import BaseModel, Field, SecretStr

from framework import Application, Service, Settings
from framework._engine.events import Event, ShutdownFinished, StartupFinished
from framework.services import DatabaseService, HttpService


class Behaviour(BaseModel):
    journal: Path | None = None
    start_delay: dict[str, float] = Field(default_factory=dict)
    stop_delay: dict[str, float] = Field(default_factory=dict)
    start_error: list[str] = Field(default_factory=list)
    stop_error: list[str] = Field(default_factory=list)
    shielded_stop: list[str] = Field(default_factory=list)
    blocking_stop: list[str] = Field(default_factory=list)  # sync sleep in a worker thread
    crash_after: dict[str, float] = Field(default_factory=dict)  # run() raises after N s
    api_key: SecretStr = SecretStr("")
    log_on_stop: dict[str, int] = Field(default_factory=dict)  # lines logged at the start of stop()
    # a library of this service takes the signals in start(): "asyncio" (loop.add_signal_handler
    # for SIGTERM) or "wakeup_fd" (signal.set_wakeup_fd to a socket of its own)
    take_signals: dict[str, str] = Field(default_factory=dict)
    # the call ("start", "run" or "stop") of a service that cancels a helper task and awaits it
    # without catching: the CancelledError escapes although nothing cancelled the service
    stray_cancel: dict[str, str] = Field(default_factory=dict)


class SampleSettings(Settings):
    behaviour: Behaviour = Field(default_factory=Behaviour)


_lock = threading.Lock()


def record(journal: Path | None, line: str) -> None:
    if journal is None:
        return
    with _lock, journal.open("a", encoding="utf-8") as f:
        f.write(line + "\n")


class Probe(Service):
    def __init__(self, name: str, behaviour: Behaviour, **deps: object) -> None:
        self.name = name
        self.b = behaviour

    def log(self, what: str) -> None:
        record(self.b.journal, f"{self.name} {what}")

    async def start(self) -> None:
        self.log("start")
        await anyio.sleep(self.b.start_delay.get(self.name, 0.0))
        if self.name in self.b.start_error:
            raise RuntimeError(f"{self.name} cannot start")
        self._take_signals(self.b.take_signals.get(self.name))
        await self._maybe_stray("start")
        self.log("started")

    async def _maybe_stray(self, call: str) -> None:
        """``task.cancel(); await task``, the CancelledError not caught (asyncio only)."""
        if self.b.stray_cancel.get(self.name) != call:
            return
        import asyncio

        self.log(f"stray {call}")
        task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
        await asyncio.sleep(0)
        task.cancel()
        await task

    def _take_signals(self, how: str | None) -> None:
        if how == "asyncio":
            import asyncio
            import signal

            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGTERM, self.log, "own SIGTERM handler ran")
        elif how == "wakeup_fd":
            import signal
            import socket

            self._socks = socket.socketpair()
            for sock in self._socks:
                sock.setblocking(False)
            signal.set_wakeup_fd(self._socks[1].fileno())

    async def run(self) -> None:
        if self.b.stray_cancel.get(self.name) == "run":
            await anyio.sleep(0.2)
            await self._maybe_stray("run")
        if self.name not in self.b.crash_after:
            await anyio.sleep_forever()
        await anyio.sleep(self.b.crash_after[self.name])
        self.log("crash")
        raise RuntimeError(f"{self.name} crashed")

    async def stop(self) -> None:
        self.log("stop")
        await self._maybe_stray("stop")
        for i in range(self.b.log_on_stop.get(self.name, 0)):
            logger.info("{} shutdown line {}", self.name, i)
        if self.name in self.b.log_on_stop:
            self.log("logged")
        delay = self.b.stop_delay.get(self.name, 0.0)
        if self.name in self.b.blocking_stop:
            await anyio.to_thread.run_sync(time.sleep, delay)
        else:
            with anyio.CancelScope(shield=self.name in self.b.shielded_stop):
                await anyio.sleep(delay)
        if self.name in self.b.stop_error:
            raise RuntimeError(f"{self.name} cannot stop")
        self.log("stopped")


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=SampleSettings)
    behaviour = settings.provided.behaviour
    a = providers.Singleton(Probe, "a", behaviour)
    b = providers.Singleton(Probe, "b", behaviour, a=a)
    c = providers.Singleton(Probe, "c", behaviour, a=a)
    d = providers.Singleton(Probe, "d", behaviour, b=b, c=c)


class App(Application):
    """The diamond a <- b, a <- c, {b, c} <- d."""

    container_class = Container
    settings_class = SampleSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        journal = self.settings.behaviour.journal  # type: ignore[attr-defined]

        def on_event(event: Event) -> None:
            if isinstance(event, StartupFinished):
                record(journal, "app ready" if event.ok else "app failed")
            elif isinstance(event, ShutdownFinished):
                record(journal, "app stopped")

        self.subscribe(on_event)


class TrioApp(App):
    backend = "trio"


class CyclicContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=SampleSettings)
    x = providers.Singleton(Probe, "x", settings.provided.behaviour)
    y = providers.Singleton(Probe, "y", settings.provided.behaviour, x=x)
    z = providers.Singleton(Probe, "z", settings.provided.behaviour, y=y)


CyclicContainer.x.add_kwargs(z=CyclicContainer.z)


class CyclicApp(Application):
    container_class = CyclicContainer
    settings_class = SampleSettings


class NotAnApp:
    pass


def read_journal(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI app: 200 "hello" on any HTTP request."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"hello"})


class WebContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=SampleSettings)
    db = providers.Singleton(DatabaseService, settings=settings.provided.database)
    worker = providers.Singleton(Probe, "worker", settings.provided.behaviour, db=db)
    http = providers.Singleton(
        HttpService, app=providers.Object(_hello), settings=settings.provided.http
    )


class WebApp(App):
    """HTTP + database + a worker: the built-in services, for end-to-end tests."""

    container_class = WebContainer
