"""The engine's walk, on asyncio and trio: tasks only where a step waits, bounds only then too."""

from __future__ import annotations

import anyio
import pytest

from framework._engine.errors import ShutdownError
from framework._engine.events import Bound, Outcome
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle
from framework._engine.service import Service

pytestmark = pytest.mark.anyio


class Waits(Service):
    """Counts how many of its kind are inside ``start()``/``stop()`` at once."""

    inside = 0
    peak = 0

    def __init__(self, start_s: float = 0.0, stop_s: float = 0.0, *, ignore: bool = False) -> None:
        self.start_s, self.stop_s, self.ignore = start_s, stop_s, ignore
        self.stopped = False

    async def _enter_wait(self, seconds: float) -> None:
        cls = type(self)
        cls.inside += 1
        cls.peak = max(cls.peak, cls.inside)
        try:
            await anyio.sleep(seconds)
        finally:
            cls.inside -= 1

    async def start(self) -> None:
        if self.start_s:
            await self._enter_wait(self.start_s)

    async def stop(self) -> None:
        if self.stop_s:
            await self._enter_wait(self.stop_s)
        self.stopped = True


class Sync(Service):
    """Never waits: its start and stop return on their first step."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")


async def test_independent_waits_overlap_among_steps_that_do_not_wait() -> None:
    Waits.inside = Waits.peak = 0
    services: dict[str, Service] = {f"w{i}": Waits(0.05, 0.05) for i in range(8)}
    services.update({f"s{i}": Sync() for i in range(8)})
    graph = DependencyGraph.from_edges({name: () for name in services})
    lifecycle = Lifecycle(services, graph)
    await lifecycle.start()
    assert Waits.peak == 8  # every waiting start was in flight at once
    Waits.peak = 0
    await lifecycle.stop()
    assert Waits.peak == 8
    assert all(r.start_outcome is Outcome.OK and r.stop_outcome is Outcome.OK for r in lifecycle)


async def test_a_timed_out_stop_does_not_cut_short_the_next_one_in_the_same_task() -> None:
    # a depends on b depends on c: a's stop overruns its bound; b's and c's then run in full
    services = {"a": Waits(stop_s=10.0), "b": Waits(stop_s=0.01), "c": Sync()}
    graph = DependencyGraph.from_edges({"a": {"b"}, "b": {"c"}, "c": ()})
    bounds = {"a": Bound(0.05, "test"), "b": Bound(5.0, "test"), "c": Bound(5.0, "test")}
    lifecycle = Lifecycle(services, graph, stop_bounds=bounds)
    await lifecycle.start()
    with pytest.raises(ShutdownError):
        await lifecycle.stop()
    outcomes = {r.name: r.stop_outcome for r in lifecycle}
    assert outcomes == {"a": Outcome.TIMED_OUT, "b": Outcome.OK, "c": Outcome.OK}
    assert services["b"].stopped and services["c"].calls == ["start", "stop"]  # type: ignore[attr-defined]


class SlowSync(Service):
    """Takes longer than its bound without ever waiting: nothing can interrupt it."""

    async def start(self) -> None:
        t = anyio.current_time()
        while anyio.current_time() - t < 0.05:
            pass


async def test_a_start_that_never_waits_is_not_cut_short() -> None:
    services: dict[str, Service] = {"slow": SlowSync(), "next": Waits(start_s=0.01)}
    graph = DependencyGraph.from_edges({"slow": (), "next": {"slow"}})
    bounds = {"slow": Bound(0.01, "test"), "next": Bound(5.0, "test")}
    lifecycle = Lifecycle(services, graph, start_bounds=bounds)
    await lifecycle.start()
    assert [r.start_outcome for r in lifecycle] == [Outcome.OK, Outcome.OK]
    await lifecycle.stop()
