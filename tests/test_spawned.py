"""`Service.spawn` and ``self.stopping`` in the engine, on asyncio and trio."""

from __future__ import annotations

import anyio
import pytest

from framework import Service, SpawnedTaskFailed
from framework._engine.events import Event
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle

pytestmark = pytest.mark.anyio


class Spawns(Service):
    def __init__(self) -> None:
        self.done: list[str] = []

    async def start(self) -> None:
        self.spawn(self._fails, name="flaky")
        self.spawn(self._slow)

    async def _fails(self) -> None:
        await anyio.sleep(0)
        raise ConnectionError("upstream went away")

    async def _slow(self) -> None:
        await anyio.sleep(0.2)
        self.done.append("slow")


async def test_a_spawned_task_that_raises_is_reported_and_the_app_goes_on() -> None:
    """The failure is an event naming the service and the task; the other task still finishes
    before stop(), and the lifecycle stops cleanly."""
    events: list[Event] = []
    service = Spawns()
    lc = Lifecycle({"s": service}, DependencyGraph.from_edges({"s": []}), on_event=events.append)
    await lc.start()
    with anyio.fail_after(5):
        while not any(isinstance(e, SpawnedTaskFailed) for e in events):
            await anyio.sleep(0.01)
    failed = [e for e in events if isinstance(e, SpawnedTaskFailed)]
    assert [(e.service, e.task, str(e.error)) for e in failed] == [
        ("s", "flaky", "upstream went away")
    ]
    await lc.stop()
    assert service.done == ["slow"] and not lc.stop_errors


class Watches(Service):
    def __init__(self) -> None:
        self.seen: list[bool] = []

    async def run(self) -> None:
        await self.stopping.wait()
        self.seen.append(self.stopping.is_set())


async def test_stopping_is_set_at_the_first_moment_of_shutdown() -> None:
    """``self.stopping`` is set when the shutdown begins; a run() waiting on it returns warm."""
    service = Watches()
    lc = Lifecycle({"w": service}, DependencyGraph.from_edges({"w": []}))
    async with anyio.create_task_group() as tg:
        await lc.start(tg)
        assert not service.stopping.is_set()
        await lc.stop()
    assert service.seen == [True]
    assert lc.records["w"].run_ended == "warm"


class OwnStopping(Service):
    """A service from before ``self.stopping`` existed, with an attribute of that name."""

    def __init__(self) -> None:
        self.stopping = anyio.Event()
        self.cancelled = False

    async def run(self) -> None:
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise


async def test_a_service_with_its_own_stopping_attribute_keeps_it() -> None:
    """Assigning ``self.stopping`` works as it always did; such a run() is cancelled at once."""
    service = OwnStopping()
    assert isinstance(service.stopping, anyio.Event)
    lc = Lifecycle({"o": service}, DependencyGraph.from_edges({"o": []}))
    async with anyio.create_task_group() as tg:
        await lc.start(tg)
        with anyio.fail_after(5):
            await lc.stop()
    assert service.cancelled and lc.records["o"].run_ended == "cold"
