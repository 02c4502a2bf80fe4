"""Find the services of a dependency-injector container and the edges between them.

Nothing is instantiated: services are the container's ``Singleton`` providers whose provided class is
a `Service` subclass, and service A depends on service B when B's provider is reachable from A's
through any chain of providers (Factory, Callable, ``.provided`` attributes, overrides, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers

from framework._heap import gc_paused
from framework.graph import DependencyGraph
from framework.service import Service

__all__ = ("discover_graph", "service_providers")


def service_providers(container: containers.Container | type[Any]) -> dict[str, Any]:
    """The container's service providers by name, in declaration order."""
    found: dict[str, Any] = {}
    for name, provider in container.providers.items():
        if not isinstance(provider, providers.BaseSingleton):
            continue
        provides = provider.provides
        if isinstance(provides, type) and issubclass(provides, Service):
            found[name] = provider
    return found


def discover_graph(services: Mapping[str, Any]) -> DependencyGraph:
    """The dependency graph between ``services`` (name -> provider); raises on a cycle."""
    with gc_paused():  # sets and dicts per service, none of them garbage: no collector passes
        return DependencyGraph.from_edges(_edges(services))


def _edges(services: Mapping[str, Any]) -> dict[str, set[str]]:
    """Each service's direct service dependencies, found through any chain of providers."""
    by_id = {id(p): name for name, p in services.items()}
    deps: dict[str, set[str]] = {}
    for name, provider in services.items():
        found: set[str] = set()
        seen: set[int] = set()
        stack = list(provider.related)
        while stack:
            p = stack.pop()
            key = id(p)
            if key in seen:
                continue
            seen.add(key)
            dep = by_id.get(key)
            if dep is not None:
                found.add(dep)  # a service: a direct edge (itself too: a cycle of one)
            else:
                stack.extend(p.related)
        deps[name] = found
    return deps
