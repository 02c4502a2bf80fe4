"""Applications the benchmarks run with ``python -m framework run bench.apps:NAME``.

- ``HttpApp``: `HttpService` serving `bench.asgi.app`.
- ``LogApp``: at shutdown ``burst`` logs ``burst.lines`` lines in its ``stop()`` (then writes
  ``done`` to ``burst.marker``); it depends on ``hang``, which stops after it and, with
  ``burst.hang``, never returns from ``stop()`` (shielded from cancellation): only a forced exit ends
  the process.
"""

from __future__ import annotations

from pathlib import Path

import anyio
from dependency_injector import containers, providers
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from bench import asgi
from framework import Application, Service, Settings
from framework.services import HttpService


class HttpContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    http = providers.Singleton(
        HttpService, app=providers.Object(asgi.app), settings=settings.provided.http
    )


class HttpApp(Application):
    container_class = HttpContainer


class BurstSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: int = 200_000
    hang: bool = False
    marker: Path | None = None


class LogSettings(Settings):
    burst: BurstSettings = Field(default_factory=BurstSettings)


class Hang(Service):
    def __init__(self, settings: BurstSettings) -> None:
        self.settings = settings

    async def stop(self) -> None:
        if self.settings.hang:
            with anyio.CancelScope(shield=True):
                await anyio.sleep(60)


class Burst(Service):
    def __init__(self, settings: BurstSettings, hang: Hang) -> None:
        self.settings = settings

    async def stop(self) -> None:
        for i in range(self.settings.lines):
            logger.info("burst line {}", i)
        if self.settings.marker is not None:
            self.settings.marker.write_text("done\n")


class LogContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=LogSettings)
    hang = providers.Singleton(Hang, settings=settings.provided.burst)
    burst = providers.Singleton(Burst, settings=settings.provided.burst, hang=hang)


class LogApp(Application):
    container_class = LogContainer
    settings_class = LogSettings
