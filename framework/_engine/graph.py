"""The service dependency graph: pure, I/O-free ordering and cycle detection."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from framework._engine.errors import DependencyCycleError, GraphError

__all__ = ("DependencyGraph",)


@dataclass(frozen=True)
class DependencyGraph:
    """Services and their direct dependencies, validated and topologically ordered.

    ``deps[a]`` is the set of services ``a`` needs started before it starts (and stopped only after it
    stops); ``dependents[a]`` the services that need ``a``, sorted (a tuple: one object the
    collector stops tracking, where a set stays tracked; a graph of 20k services holds 20k). Construction raises `DependencyCycleError` naming the services in a cycle, and
    `GraphError` for a dependency on an unknown service.
    """

    deps: Mapping[str, frozenset[str]]
    dependents: Mapping[str, tuple[str, ...]] = field(init=False, repr=False)
    order: tuple[str, ...] = field(init=False, repr=False)
    """A topological order: every service after all its dependencies."""
    layer: Mapping[str, int] = field(init=False, repr=False)
    """0 for a service without dependencies, else one more than its deepest dependency's."""

    @classmethod
    def from_edges(cls, deps: Mapping[str, Iterable[str]]) -> DependencyGraph:
        return cls({name: frozenset(d) for name, d in deps.items()})

    def __post_init__(self) -> None:
        deps = self.deps
        dependents: dict[str, list[str]] = {name: [] for name in deps}
        for name, ds in deps.items():
            for d in ds:
                after = dependents.get(d)
                if after is None:
                    raise GraphError(f"service {name!r} depends on unknown service {d!r}")
                after.append(name)

        missing = {name: len(ds) for name, ds in deps.items()}
        layer: dict[str, int] = {}
        order: list[str] = []
        # sorted where sets are walked: the same graph always gives the same order and output
        ready = sorted((name for name, n in missing.items() if n == 0), reverse=True)
        for name in ready:
            layer[name] = 0
        while ready:
            name = ready.pop()
            order.append(name)
            below = layer[name] + 1
            after = dependents[name]
            if len(after) > 1:
                after.sort(reverse=True)
            for dependent in after:
                if layer.get(dependent, -1) < below:
                    layer[dependent] = below
                left = missing[dependent] - 1
                missing[dependent] = left
                if not left:
                    ready.append(dependent)
        if len(order) != len(deps):
            raise DependencyCycleError(_find_cycle(deps, {n for n, m in missing.items() if m}))

        object.__setattr__(
            self, "dependents", {n: tuple(reversed(s)) for n, s in dependents.items()}
        )
        object.__setattr__(self, "order", tuple(order))
        object.__setattr__(self, "layer", layer)

    def __len__(self) -> int:
        return len(self.deps)

    def layers(self) -> list[list[str]]:
        """Services grouped by layer, each layer sorted by name."""
        out: list[list[str]] = [[] for _ in range(max(self.layer.values(), default=-1) + 1)]
        for name, n in self.layer.items():
            out[n].append(name)
        return [sorted(names) for names in out]

    def critical_path(self, cost: Mapping[str, float]) -> float:
        """The longest sum of ``cost`` along any dependency chain (the ideal concurrent time)."""
        return self.longest_chain(cost)[0]

    def longest_chain(self, cost: Mapping[str, float]) -> tuple[float, list[str]]:
        """The chain with the longest sum of ``cost``, from a service down to its dependencies.

        Reversed, the same chain is the longest path of the shutdown.
        """
        finish: dict[str, float] = {}
        via: dict[str, str | None] = {}
        for name in self.order:
            below = max(sorted(self.deps[name]), key=lambda d: finish[d], default=None)
            finish[name] = (finish[below] if below else 0.0) + cost.get(name, 0.0)
            via[name] = below
        if not finish:
            return 0.0, []
        top: str | None = max(finish, key=lambda n: finish[n])
        total = finish[top]  # type: ignore[index]
        chain = []
        while top is not None:
            chain.append(top)
            top = via[top]
        return total, chain


def _find_cycle(deps: Mapping[str, frozenset[str]], stuck: set[str]) -> list[str]:
    """One cycle among ``stuck`` (nodes Kahn's algorithm could not order), in dependency order."""
    start = min(stuck)
    path: list[str] = []
    index: dict[str, int] = {}
    node = start
    # every stuck node has a stuck dependency, so following them must revisit a node
    while node not in index:
        index[node] = len(path)
        path.append(node)
        node = min(d for d in deps[node] if d in stuck)
    cycle = path[index[node] :]
    # start the report at the alphabetically first service, for stable messages
    first = cycle.index(min(cycle))
    return cycle[first:] + cycle[:first]
