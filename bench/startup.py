"""1. Startup and shutdown against the critical path.

A generated DAG of services (60 services in 6 layers; each depends on 1-3 services of the layer
below and sometimes one deeper), each ``start()`` and ``stop()`` sleeping a fixed 20-50 ms. The
ideal concurrent time is the critical path (the longest chain of sleeps); the `Lifecycle` wall time
is divided by it. The baseline starts in dependency order one at a time and stops in reverse (how
fx, the .NET generic host by default, and Spring within a phase do it).
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping

import anyio

from bench._common import TIMES, Figure, Result, median
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle
from framework._engine.service import Service

SERVICES = 60
DEPTH = 6
SLEEP_MS = (20, 50)
GOAL = 1.05


class Sleeper(Service):
    def __init__(self, start_s: float, stop_s: float) -> None:
        self.start_s = start_s
        self.stop_s = stop_s

    async def start(self) -> None:
        await anyio.sleep(self.start_s)

    async def stop(self) -> None:
        await anyio.sleep(self.stop_s)


def make_dag(seed: int) -> tuple[dict[str, list[str]], dict[str, float], dict[str, float]]:
    """Edges, start costs and stop costs (seconds) of a layered random DAG."""
    rng = random.Random(seed)
    per_layer = SERVICES // DEPTH
    layers = [[f"s{layer}_{i}" for i in range(per_layer)] for layer in range(DEPTH)]
    deps: dict[str, list[str]] = {}
    for n, layer in enumerate(layers):
        for name in layer:
            chosen = set(rng.sample(layers[n - 1], rng.randint(1, 3))) if n else set()
            if n >= 2 and rng.random() < 0.3:
                chosen.add(rng.choice(layers[rng.randrange(n - 1)]))
            deps[name] = sorted(chosen)
    lo, hi = SLEEP_MS
    start = {name: rng.randint(lo, hi) / 1000 for name in deps}
    stop = {name: rng.randint(lo, hi) / 1000 for name in deps}
    return deps, start, stop


def _services(start: Mapping[str, float], stop: Mapping[str, float]) -> dict[str, Service]:
    return {name: Sleeper(start[name], stop[name]) for name in start}


async def _ours(
    graph: DependencyGraph, start: dict[str, float], stop: dict[str, float]
) -> tuple[float, float]:
    lifecycle = Lifecycle(_services(start, stop), graph)
    t0 = time.perf_counter()
    await lifecycle.start()
    t1 = time.perf_counter()
    await lifecycle.stop()
    return t1 - t0, time.perf_counter() - t1


async def _serial(
    graph: DependencyGraph, start: dict[str, float], stop: dict[str, float]
) -> tuple[float, float]:
    services = _services(start, stop)
    t0 = time.perf_counter()
    for name in graph.order:
        await services[name].start()
    t1 = time.perf_counter()
    for name in reversed(graph.order):
        await services[name].stop()
    return t1 - t0, time.perf_counter() - t1


async def _chain(chain: list[str], cost: Mapping[str, float]) -> float:
    """The critical chain slept one step after another: the path itself, with the timer's overshoot."""
    t0 = time.perf_counter()
    for name in chain:
        await anyio.sleep(cost[name])
    return time.perf_counter() - t0


def run(quick: bool) -> Result:
    runs = 2 if quick else 5
    deps, start, stop = make_dag(seed=6)
    graph = DependencyGraph.from_edges(deps)
    crit_start, chain_start = graph.longest_chain(start)
    crit_stop, chain_stop = graph.longest_chain(stop)
    layers = len(graph.layers())

    ours: dict[str, list[list[float]]] = {"asyncio": [[], []], "trio": [[], []]}
    serial: list[list[float]] = [[], []]
    chains: list[list[float]] = [[], []]
    for _ in range(runs):
        for backend in ("asyncio", "trio"):
            up, down = anyio.run(_ours, graph, start, stop, backend=backend)
            ours[backend][0].append(up)
            ours[backend][1].append(down)
        up, down = anyio.run(_serial, graph, start, stop)
        serial[0].append(up)
        serial[1].append(down)
        chains[0].append(anyio.run(_chain, chain_start, start))
        chains[1].append(anyio.run(_chain, list(reversed(chain_stop)), stop))

    what = f"{len(deps)} services, {layers} layers, {SLEEP_MS[0]}-{SLEEP_MS[1]} ms each"
    res = Result()
    for i, (phase, crit) in enumerate((("startup", crit_start), ("shutdown", crit_stop))):
        walls = ours["asyncio"][i]
        res.figures.append(
            Figure(
                "startup",
                f"{phase}, {what}: wall / critical path",
                "s",
                median(walls),
                crit,
                "critical path",
                f"≤ {GOAL}{TIMES}",
                ratio=median([w / crit for w in walls]),
                runs=walls,
                miss_note=_MISS,
            )
        )
        res.figures[-1].met = res.figures[-1].ratio is not None and res.figures[-1].ratio <= GOAL
    for i, phase in enumerate(("startup", "shutdown")):
        walls, base = ours["asyncio"][i], serial[i]
        res.figures.append(
            Figure(
                "startup",
                f"{phase}, same DAG: concurrent vs serial in dependency order",
                "s",
                median(walls),
                median(base),
                "serial, one at a time",
                "(reported)",
                ratio=median([w / b for w, b in zip(walls, base, strict=True)]),
                runs=walls,
                baseline_runs=base,
            )
        )
    rows = [
        "| phase | critical path | critical chain slept in a row | ours, asyncio | ours, trio | serial |",
        "|---|---|---|---|---|---|",
    ]
    for i, (phase, crit) in enumerate((("startup", crit_start), ("shutdown", crit_stop))):
        rows.append(
            f"| {phase} | {crit * 1000:.0f} ms | {median(chains[i]) * 1000:.1f} ms "
            f"| {median(ours['asyncio'][i]) * 1000:.1f} ms | {median(ours['trio'][i]) * 1000:.1f} ms "
            f"| {median(serial[i]) * 1000:.0f} ms |"
        )
    res.details.append(
        f"**Startup and shutdown** ({what}; medians of {runs} runs; the critical chain has "
        f"{len(chain_start)} services at startup, {len(chain_stop)} at shutdown):\n\n"
        + "\n".join(rows)
    )
    res.notes.append(
        "Startup/shutdown: the critical path is the sum of the sleeps along the longest dependency "
        "chain, the least any orchestrator can take; a ratio of 1.0 means no time lost to ordering. "
        "'Critical chain slept in a row' sleeps that chain's services one after another without any "
        "framework: what the event loop's timer alone adds."
    )
    res.data = {
        "critical_path_s": {"startup": crit_start, "shutdown": crit_stop},
        "ours_s": ours,
        "serial_s": serial,
        "chain_s": chains,
    }
    return res


_MISS = (
    "Each start begins as soon as its own dependencies are done (no layer barrier), so the wall "
    "time is the critical path plus the timer's overshoot per step along it (compare the 'critical "
    "chain slept in a row' column): a miss here means the event loop was starved by other load on "
    "the shared cores, not an ordering cost."
)
