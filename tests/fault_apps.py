"""Applications whose services block the event loop, for the fault tests (`tests/test_faults.py`).

The `tests.sample_apps` probes, plus synchronous code where async code belongs: a constructor, a
``run()`` body or a ``stop()`` that calls ``time.sleep``, so the loop is blocked and only a signal
handling that does not depend on it can act.
"""

from __future__ import annotations

import time
from typing import Any

from dependency_injector import containers, providers
from pydantic import Field

from framework import Settings
from tests.sample_apps import App, Behaviour, Probe


class FaultBehaviour(Behaviour):
    sync_init: dict[str, float] = Field(default_factory=dict)  # time.sleep in the constructor
    sync_run: dict[str, float] = Field(default_factory=dict)  # time.sleep in run()
    sync_stop: dict[str, float] = Field(default_factory=dict)  # time.sleep in stop()


class FaultSettings(Settings):
    behaviour: FaultBehaviour = Field(default_factory=FaultBehaviour)


class Blocking(Probe):
    b: FaultBehaviour

    def __init__(self, name: str, behaviour: FaultBehaviour, **deps: object) -> None:
        super().__init__(name, behaviour, **deps)
        if name in behaviour.sync_init:
            self.log("init")
            time.sleep(behaviour.sync_init[name])

    async def run(self) -> None:
        if self.name in self.b.sync_run:
            self.log("blocking")
            time.sleep(self.b.sync_run[self.name])
        await super().run()

    async def stop(self) -> None:
        if self.name in self.b.sync_stop:
            self.log("blocking")
            time.sleep(self.b.sync_stop[self.name])
        await super().stop()


class FaultContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=FaultSettings)
    behaviour = settings.provided.behaviour
    a = providers.Singleton(Blocking, "a", behaviour)
    b = providers.Singleton(Blocking, "b", behaviour, a=a)


class FaultApp(App):
    """a <- b, each able to block the loop."""

    container_class = FaultContainer  # type: ignore[assignment]
    settings_class = FaultSettings

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
