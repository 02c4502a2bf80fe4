"""Find the services of a dependency-injector container and the edges between them.

Nothing is instantiated: services are the container's ``Singleton`` providers whose provided class is
a `Service` subclass, and service A depends on service B when B's provider is reachable from A's
through any chain of providers (Factory, Callable, ``.provided`` attributes, overrides, ...).

Wiring adds edges: the providers that the container's wired modules inject (``Provide[...]``,
``Provider[...]``, ``Closing[...]``, also inside ``Depends(...)`` and ``Annotated[...]``) are
dependencies of every service that runs wired code (every ``HttpService``, and classes with
``uses_wiring = True``; see `framework._runtime.wiring`).

Services that instrument others add edges too: a service class naming classes in
``_framework_precedes`` (``TelemetryService`` names ``HttpService`` and ``DatabaseService``) is a
dependency of every service of those classes (or their subclasses) in the container, so it starts
before them and stops after them; no wiring needed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from dependency_injector import containers, providers

from framework._engine.graph import DependencyGraph
from framework._engine.service import Service
from framework._runtime.wiring import uses_wiring, wired_injections

__all__ = (
    "ServiceProviders",
    "discover_graph",
    "preceding_edges",
    "service_providers",
    "wired_edges",
)


class ServiceProviders(dict[str, Any]):
    """Service providers by name, in declaration order, remembering the container they came from
    (so `discover_graph` can add the edges its wiring implies)."""

    container: Any = None

    def of(self, container: Any) -> ServiceProviders:
        """The same services in ``container``, an instance of the container class they were
        found in (its providers are copies of the class's: the same names and kinds)."""
        found = ServiceProviders((name, container.providers[name]) for name in self)
        found.container = container
        return found


def service_providers(container: containers.Container | type[Any]) -> ServiceProviders:
    """The container's service providers by name, in declaration order."""
    found = ServiceProviders()
    found.container = container
    is_service: dict[type, bool] = {}  # many providers of one class: ask its subclass test once
    for name, provider in container.providers.items():
        if not isinstance(provider, providers.BaseSingleton):
            continue
        provides = provider.provides
        if not isinstance(provides, type):
            continue
        service = is_service.get(provides)
        if service is None:
            service = is_service[provides] = issubclass(provides, Service)
        if service:
            found[name] = provider
    return found


def discover_graph(services: Mapping[str, Any], *, container: Any = None) -> DependencyGraph:
    """The dependency graph between ``services`` (name -> provider); raises on a cycle.

    ``container`` (default: the one `service_providers` found them in) adds the wiring edges.
    """
    by_id = {id(p): name for name, p in services.items()}
    deps = {name: _reachable(related(provider), by_id) for name, provider in services.items()}
    container = container if container is not None else getattr(services, "container", None)
    if container is not None:
        for name, wired in wired_edges(services, container).items():
            deps[name] |= wired
    for name, preceding in preceding_edges(services).items():
        deps[name] |= preceding
    return DependencyGraph.from_edges(deps)


def preceding_edges(services: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """The edges that ``_framework_precedes`` adds: each service whose class (or a base of it) is
    named there depends on the service that names it."""
    firsts: dict[str, frozenset[str]] = {}
    for name, provider in services.items():
        names = getattr(provider.provides, "_framework_precedes", ())
        if names:
            firsts[name] = frozenset(names)
    if not firsts:
        return {}
    edges: dict[str, frozenset[str]] = {}
    for name, provider in services.items():
        if name in firsts:
            continue
        classes = {f"{c.__module__}.{c.__qualname__}" for c in provider.provides.__mro__}
        deps = frozenset(first for first, names in firsts.items() if classes & names)
        if deps:
            edges[name] = deps
    return edges


def wired_edges(services: Mapping[str, Any], container: Any) -> dict[str, frozenset[str]]:
    """The edges that wiring adds: for each service that runs wired code, the services that the
    container's wired modules inject (never the service itself)."""
    users = [name for name, p in services.items() if uses_wiring(p.provides)]
    if not users:
        return {}
    by_id = {id(p): name for name, p in services.items()}
    injected: set[str] = set()
    for injection in wired_injections(container):
        injected |= _reachable([injection.provider], by_id)
    return {name: frozenset(injected - {name}) for name in users if injected - {name}}


def _reachable(start: Iterable[Any], by_id: Mapping[int, str]) -> set[str]:
    """The services reachable from ``start``, stopping at each service found (a direct edge)."""
    found: set[str] = set()
    stack = []
    for p in start:  # most often services themselves: no walk
        dep = by_id.get(id(p))
        if dep is None:
            stack.append(p)
        else:
            found.add(dep)  # a service: a direct edge (itself too: a cycle of one)
    seen: set[int] = set()
    while stack:
        p = stack.pop()
        key = id(p)
        if key in seen:
            continue
        seen.add(key)
        dep = by_id.get(key)
        if dep is not None:
            found.add(dep)
        else:
            stack.extend(related(p))
    return found


# the ``related`` of factories and singletons, which `related` lists itself (the same providers)
_PLAIN_RELATED = (providers.Factory.related, providers.BaseSingleton.related)


def related(provider: Any) -> Any:
    """``provider.related``: the providers it refers to (faster for factories and singletons)."""
    if getattr(type(provider), "related", None) not in _PLAIN_RELATED:
        return provider.related
    refs = (
        provider.provides,
        *provider.args,
        *provider.kwargs.values(),
        *provider.attributes.values(),
        *provider.overridden,
    )
    return [p for p in refs if providers.is_provider(p)]
