"""The dependency graph: ordering, layers, cycles, scale."""

from __future__ import annotations

import random

import pytest

from framework._engine.errors import DependencyCycleError, GraphError
from framework._engine.graph import DependencyGraph


def graph(**deps: str) -> DependencyGraph:
    return DependencyGraph.from_edges({k: [d for d in v.split() if d] for k, v in deps.items()})


def assert_topological(g: DependencyGraph) -> None:
    position = {name: i for i, name in enumerate(g.order)}
    for name, deps in g.deps.items():
        for d in deps:
            assert position[d] < position[name]


def test_empty_graph() -> None:
    """No services: no layers, nothing to order."""
    g = DependencyGraph.from_edges({})
    assert g.order == () and g.layers() == [] and len(g) == 0


def test_diamond_layers() -> None:
    """A service's layer is one more than its deepest dependency's."""
    g = graph(a="", b="a", c="a", d="b c")
    assert g.layers() == [["a"], ["b", "c"], ["d"]]
    assert g.dependents["a"] == ("b", "c")
    assert_topological(g)


def test_layer_is_deepest_dependency_plus_one() -> None:
    """A service with a shallow and a deep dependency sits above the deep one."""
    g = graph(a="", b="a", c="b", d="a c")
    assert g.layer == {"a": 0, "b": 1, "c": 2, "d": 3}


def test_independent_services_share_layer_zero() -> None:
    g = graph(x="", y="", z="")
    assert g.layers() == [["x", "y", "z"]]


@pytest.mark.parametrize(
    ("deps", "cycle"),
    [
        ({"a": "a"}, ("a",)),
        ({"a": "b", "b": "a"}, ("a", "b")),
        ({"a": "c", "b": "a", "c": "b", "d": ""}, ("a", "c", "b")),
        ({"root": "", "x": "root z", "y": "x", "z": "y", "leaf": "z"}, ("x", "z", "y")),
    ],
)
def test_cycle_names_exactly_the_services_in_it(
    deps: dict[str, str], cycle: tuple[str, ...]
) -> None:
    """The cycle error lists the cycle's members in dependency order, and no bystander."""
    with pytest.raises(DependencyCycleError) as info:
        graph(**deps)
    assert info.value.cycle == cycle
    assert " -> ".join([*cycle, cycle[0]]) in str(info.value)


def test_unknown_dependency_is_named() -> None:
    with pytest.raises(GraphError, match="'a' depends on unknown service 'ghost'"):
        graph(a="ghost")


def test_critical_path() -> None:
    """The critical path of the diamond is the longest chain of costs."""
    g = graph(a="", b="a", c="a", d="b c")
    assert g.critical_path({"a": 0.3, "b": 0.5, "c": 0.5, "d": 0.3}) == pytest.approx(1.1)


def random_dag(n: int, fan_in: int = 3, seed: int = 0) -> dict[str, list[str]]:
    rng = random.Random(seed)
    return {f"s{i}": [f"s{j}" for j in rng.sample(range(i), min(i, fan_in))] for i in range(n)}


@pytest.mark.parametrize("seed", range(20))
def test_random_dags_are_ordered(seed: int) -> None:
    """Any random DAG: topological order, and layers consistent with edges."""
    g = DependencyGraph.from_edges(random_dag(200, fan_in=seed % 5, seed=seed))
    assert_topological(g)
    for name, deps in g.deps.items():
        assert g.layer[name] == max((g.layer[d] + 1 for d in deps), default=0)


@pytest.mark.parametrize("seed", range(10))
def test_random_cycles_are_found(seed: int) -> None:
    """Adding a back edge to a random DAG yields a cycle error naming a real cycle."""
    deps = random_dag(100, seed=seed)
    rng = random.Random(seed)
    lo, hi = sorted(rng.sample(range(1, 100), 2))
    # make s_lo depend on s_hi, where s_hi transitively depends on s_lo through a chain
    for i in range(lo + 1, hi + 1):
        deps[f"s{i}"].append(f"s{i - 1}")
    deps[f"s{lo}"].append(f"s{hi}")
    with pytest.raises(DependencyCycleError) as info:
        DependencyGraph.from_edges(deps)
    cycle = info.value.cycle
    for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
        assert b in deps[a]


def test_ten_thousand_services() -> None:
    """A 10k-service graph is ordered (its speed is measured in `make bench`, not here)."""
    g = DependencyGraph.from_edges(random_dag(10_000))
    assert len(g.order) == 10_000
    assert_topological(g)
