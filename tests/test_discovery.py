"""Finding services in a container and the edges between them, without instantiating anything."""

from __future__ import annotations

from typing import Any

import pytest
from dependency_injector import containers, providers

from framework import Service
from framework._engine.errors import DependencyCycleError
from framework._runtime.discovery import discover_graph, service_providers

built: list[str] = []


class Tracked(Service):
    def __init__(self, **deps: Any) -> None:
        built.append(type(self).__name__)


class Db(Tracked): ...


class Cache(Tracked): ...


class Worker(Tracked): ...


class Api(Tracked): ...


class Repo:
    def __init__(self, db: Any) -> None:
        self.db = db


class Settings:
    database = object()


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency()
    db = providers.Singleton(Db, settings=settings.provided.database)
    cache = providers.ThreadSafeSingleton(Cache)
    repo = providers.Factory(Repo, db=db)
    worker = providers.Singleton(Worker, repo=repo)
    api = providers.Singleton(
        Api,
        engine=providers.Callable(lambda e: e, db.provided.engine),
        cache=cache,
        worker=providers.List(worker),
    )
    helper = providers.Singleton(Repo, db=db)  # a Singleton, but not a Service
    value = providers.Object(3)


def test_services_are_service_singletons_only() -> None:
    assert list(service_providers(Container)) == ["db", "cache", "worker", "api"]


def test_edges_through_factories_callables_and_attributes() -> None:
    """worker -> db through a Factory; api -> db through a Callable on a provided attribute."""
    graph = discover_graph(service_providers(Container))
    assert graph.deps == {
        "db": set(),
        "cache": set(),
        "worker": {"db"},
        "api": {"db", "cache", "worker"},
    }
    assert graph.layers() == [["cache", "db"], ["worker"], ["api"]]


def test_discovery_instantiates_nothing() -> None:
    built.clear()
    discover_graph(service_providers(Container()))
    assert built == []


def test_cycle_through_a_factory_is_reported_before_any_constructor() -> None:
    class Cyclic(containers.DeclarativeContainer):
        a = providers.Singleton(Db)
        b = providers.Singleton(Cache, repo=providers.Factory(Repo, db=a))

    Cyclic.a.add_kwargs(cache=Cyclic.b)
    built.clear()
    with pytest.raises(DependencyCycleError, match="a -> b -> a"):
        discover_graph(service_providers(Cyclic))
    assert built == []


def test_override_edges_are_followed() -> None:
    """A provider overridden in tests contributes the overriding provider's edges."""
    container = Container()
    container.cache.override(providers.Singleton(Cache, db=container.db))
    graph = discover_graph(service_providers(container))
    assert graph.deps["cache"] == {"db"}


def test_related_lists_what_dependency_injector_lists() -> None:
    """The quick path for plain factories and singletons lists what ``provider.related`` lists."""
    import threading

    from dependency_injector import containers, providers

    from framework import Service
    from framework._runtime.discovery import related

    class Db(Service):
        def __init__(self, url: str = "", *, pool: object = None) -> None:
            self.url, self.pool = url, pool

    class Shop(containers.DeclarativeContainer):
        __self__ = providers.Self()
        config = providers.Configuration()
        db = providers.Singleton(Db, config.db.url, pool=providers.Object("pool"))
        lock_guarded = providers.ThreadSafeSingleton(Db, "threadsafe")
        repo = providers.Factory(dict, db=db, options={"retries": [1, 2]})
        plain = providers.Singleton(Db, "plain", pool=providers.Object(threading.Lock()))
        callable_ = providers.Callable(dict, a=db)
        provided = providers.Singleton(dict, url=db.provided.url, repo=repo, container=__self__)
        listed = providers.List(db, plain)

    for provider in [*Shop.traverse(), *Shop().traverse()]:
        assert list(related(provider)) == list(provider.related)
