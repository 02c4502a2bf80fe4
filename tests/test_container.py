"""`instantiate` gives what ``container_class()`` gives: the same copied provider graph, faster."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from dependency_injector import containers, providers

from framework import Service
from framework._provider_copy import BY_STATE
from framework.container import instantiate


class Db(Service):
    def __init__(self, url: str = "", *, pool: Any = None) -> None:
        self.url, self.pool = url, pool


class Repo:
    def __init__(self, db: Any, *, options: Any = None) -> None:
        self.db, self.options = db, options


class Api(Service):
    def __init__(self, *deps: Any, **named: Any) -> None:
        self.deps, self.named = deps, named


class Base(containers.DeclarativeContainer):
    inherited = providers.Singleton(Db, "inherited")


class Shop(Base):
    __self__ = providers.Self()
    config = providers.Configuration()
    db = providers.Singleton(Db, config.db.url, pool=providers.Object("pool"))
    lock_guarded = providers.ThreadSafeSingleton(Db, "threadsafe")
    repo = providers.Factory(Repo, db, options={"retries": [1, 2]})
    repo_attrs = providers.Factory(Repo, db)
    repo_attrs.add_attributes(tag=providers.Object("t"))
    plain = providers.Singleton(Db, "plain", pool=[1, 2, 3])
    callable_ = providers.Callable(dict, a=db)
    provided = providers.Singleton(Api, db.provided.url, repo, container=__self__)
    overridden = providers.Singleton(Db, "original")
    api = providers.Singleton(Api, db, repo, plain, provided, overridden, key=db)
    dependency = providers.Dependency(instance_of=str, default="x")
    selected = providers.Selector(config.kind, a=db, b=plain)
    listed = providers.List(db, plain)
    delegated = providers.Delegate(db)
    # arguments that are all providers: copied field by field (see framework._provider_copy)
    by_state = providers.Factory(
        Api, db.provider, providers.DelegatedFactory(Repo, db), key=repo, other=db
    )
    by_state.add_attributes(tag=db, label=providers.Object("l"))


Shop.overridden.override(providers.Singleton(Db, "override"))


def _shape(container: Any) -> list[Any]:
    """The copied graph, each provider numbered by first visit: types, edges, plain values."""
    number: dict[int, int] = {}
    out: list[Any] = []

    def visit(p: Any) -> int:
        if id(p) in number:
            return number[id(p)]
        number[id(p)] = len(number)
        related = [visit(r) for r in p.related]
        item: list[Any] = [type(p).__name__, related]
        if isinstance(p, providers.Factory | providers.BaseSingleton):
            plain = [a for a in p.args if not providers.is_provider(a)]
            kw = {k: v for k, v in p.kwargs.items() if not providers.is_provider(v)}
            item += [p.provides, plain, kw, sorted(p.attributes), len(p.overridden)]
        out.append(item)
        return number[id(p)]

    for name, provider in container.providers.items():
        out.append((name, visit(provider)))
    return out


def _all(container: Any) -> set[int]:
    return {id(p) for p in container.traverse()}


def test_the_same_graph_as_the_class_instantiates() -> None:
    fast, slow = instantiate(Shop), Shop()
    assert type(fast) is type(slow)
    assert list(fast.providers) == list(slow.providers)
    assert _shape(fast) == _shape(slow)
    assert fast.declarative_parent is Shop
    assert fast.__self__() is fast and fast.provided().named["container"] is fast
    # nothing shared with the class, nor between instances
    assert not _all(fast) & {id(p) for p in Shop.traverse()}
    assert not _all(fast) & _all(slow)
    # plain arguments are copied, as dependency-injector copies them
    assert fast.plain.kwargs["pool"] == [1, 2, 3]
    assert fast.plain.kwargs["pool"] is not Shop.plain.kwargs["pool"]


def test_singletons_are_per_instance_and_overrides_carry_over() -> None:
    one, two = instantiate(Shop), instantiate(Shop)
    one.config.from_dict({"db": {"url": "sqlite://"}, "kind": "a"})
    two.config.from_dict({"db": {"url": "pg://"}, "kind": "b"})
    assert one.db() is one.db() and one.db() is not two.db()
    assert one.db().url == "sqlite://" and two.db().url == "pg://"
    assert one.api().deps[0] is one.db() and one.api().deps[2] is one.plain()
    assert one.overridden().url == "override" and one.overridden.overridden
    assert one.selected() is one.db() and two.selected() is two.plain()
    assert one.repo_attrs().tag == "t" and one.repo().options == {"retries": [1, 2]}
    one.db.override(providers.Object(Db("manual")))
    assert one.db().url == "manual" and two.db().url == "pg://" and Shop.db.overridden == ()
    assert one.inherited() is not two.inherited()


def _fields(container: Any) -> list[Any]:
    """Every field of every copied Cython object (its pickle state), objects numbered by first
    visit; the providers dependency-injector copies itself (not singletons nor factories) by type."""
    number: dict[int, int] = {}
    out: list[Any] = []

    def value(v: Any) -> Any:
        if isinstance(v, tuple):
            return tuple(value(x) for x in v)
        if type(v).__module__ == "dependency_injector.providers":
            return visit(v)
        return v

    def visit(obj: Any) -> Any:
        if id(obj) in number:
            return number[id(obj)]
        number[id(obj)] = len(number)
        if isinstance(obj, providers.Provider) and not isinstance(
            obj, providers.Factory | providers.BaseSingleton | providers.Callable
        ):
            out.append((number[id(obj)], type(obj).__name__))
        else:
            out.append((number[id(obj)], type(obj).__name__, value(obj.__reduce_cython__()[2])))
        return number[id(obj)]

    for name, provider in container.providers.items():
        out.append((name, visit(provider)))
    return out


def test_every_field_is_what_dependency_injector_copies() -> None:
    assert _fields(instantiate(Shop)) == _fields(Shop())


def test_the_installed_dependency_injector_is_copied_field_by_field() -> None:
    # False means its providers' field layouts changed: compare them with _provider_copy._LAYOUTS
    assert BY_STATE
    fast = instantiate(Shop)
    made = fast.by_state()
    assert made.deps[0] is fast.db and isinstance(made.deps[1](), Repo)
    assert isinstance(made.named["key"], Repo) and made.named["other"] is fast.db()
    assert made.tag is fast.db() and made.label == "l"


class NotCopyable(containers.DeclarativeContainer):
    locked = providers.Singleton(Db, "x", pool=threading.Lock())


def test_a_non_copyable_argument_raises_the_same_error() -> None:
    with pytest.raises(Exception) as slow:
        NotCopyable()
    with pytest.raises(Exception) as fast:
        instantiate(NotCopyable)
    assert type(fast.value) is type(slow.value) and str(fast.value) == str(slow.value)


def test_configuration_files_load_when_the_container_is_made(tmp_path: Any) -> None:
    settings = tmp_path / "config.json"
    settings.write_text('{"url": "from-file"}', encoding="utf-8")

    class Loaded(containers.DeclarativeContainer):
        config = providers.Configuration(json_files=[settings])
        db = providers.Singleton(Db, config.url)
        plain = providers.Singleton(Db, "plain")

    assert instantiate(Loaded).db().url == Loaded().db().url == "from-file"


def test_related_lists_what_dependency_injector_lists() -> None:
    from framework.discovery import related

    for provider in [*Shop.traverse(), *instantiate(Shop).traverse()]:
        assert list(related(provider)) == list(provider.related)
