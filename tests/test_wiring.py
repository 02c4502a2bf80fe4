"""Wiring drives the order: what wired modules inject, unwiring, settings-provider pitfalls."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dependency_injector import containers, providers

from framework import Application, Service, Settings
from framework._runtime.discovery import discover_graph, service_providers, wired_edges
from framework._runtime.settings_provider import settings_provider_problems
from framework._runtime.wiring import unwire_container, uses_wiring, wired_injections
from framework.services import HttpService
from framework.testing import run_app
from tests._process import REPO, run_cli
from tests.wired import app as wired_app
from tests.wired import by_string
from tests.wired.containers import Base, Db, journal


async def asgi(scope: Any, receive: Any, send: Any) -> None:  # never called
    raise AssertionError("not served")


def container(modules: list[str] = (), packages: list[str] = (), **extra: Any) -> Any:  # type: ignore[assignment]
    """A container class like Base with an HTTP service, wiring ``modules`` and ``packages``."""
    attrs = {
        "wiring_config": containers.WiringConfiguration(modules=modules, packages=packages),
        "http": providers.Singleton(HttpService, app=providers.Object(asgi)),
        **extra,
    }
    return type("Wired", (Base,), attrs)


def deps(container_or_class: Any) -> dict[str, set[str]]:
    graph = discover_graph(service_providers(container_or_class))
    return {name: set(d) for name, d in graph.deps.items()}


@pytest.fixture
def built() -> Iterator[list[Any]]:
    """Containers created by a test, unwired after it (creating one wires its modules)."""
    made: list[Any] = []
    yield made
    for c in made:
        unwire_container(c)


def test_check_prints_db_before_http() -> None:
    """The issue's example: with only the wiring linking them, `check` prints db, then http."""
    result = run_cli(REPO, "check", "tests.wired.app:App")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:2] == ["0: db", "1: http"]


def test_graph_shows_the_wired_edge() -> None:
    """`framework graph` lists http's dependency on db, found through the wiring."""
    result = run_cli(REPO, "graph", "tests.wired.app:App")
    assert result.returncode == 0, result.stderr
    assert "http (layer 1) <- depends on: db" in result.stdout


def test_fastapi_depends_provide_by_class() -> None:
    """``Depends(Provide[Base.repo])`` under ``@inject``: http depends on db through the Factory."""
    assert deps(container(["tests.wired.by_class"])) == {
        "db": set(),
        "cache": set(),
        "http": {"db"},
    }


def test_annotated_parameters_and_module_attributes() -> None:
    """``Annotated[Repo, Depends(Provide[...])]`` and an ``Annotated`` module attribute count."""
    assert deps(container(["tests.wired.annotated"]))["http"] == {"db", "cache"}


def test_string_ids_resolve_and_unknown_ones_are_skipped() -> None:
    """``Provide["db"]`` and ``Provider["cache"]`` resolve by name; an unknown name is skipped."""
    found = wired_injections(container(["tests.wired.by_string"]))
    where = {i.where.rsplit(":", 1)[1] for i in found}
    assert where == {"by_name(db)", "provider_of(cache)"}
    assert deps(container(["tests.wired.by_string"]))["http"] == {"db", "cache"}


def test_packages_are_walked() -> None:
    """A package in ``wiring_config.packages``: a method in one of its submodules counts."""
    found = wired_injections(container(packages=["tests.wired.pkg"]))
    assert [i.where for i in found] == ["tests.wired.pkg.deep:Handler.handle(cache)"]
    assert deps(container(packages=["tests.wired.pkg"]))["http"] == {"cache"}


def test_closing_marker() -> None:
    """``Closing[Provide[Base.session]]``: the resource's dependency (db) is http's."""
    assert deps(container(["tests.wired.closing"]))["http"] == {"db"}


def test_services_flagged_uses_wiring_get_the_edges_too() -> None:
    """A service class with ``uses_wiring = True`` runs wired code: it gets the same edges."""

    class Worker(Service):
        uses_wiring = True

    class Plain(Service): ...

    c = container(["tests.wired.by_class"], worker=providers.Singleton(Worker))
    c.plain = providers.Singleton(Plain)
    assert uses_wiring(Worker) and uses_wiring(HttpService) and not uses_wiring(Plain)
    graph = deps(c)
    assert graph["worker"] == {"db"} and graph["plain"] == set()
    assert wired_edges(service_providers(c), c) == {"http": {"db"}, "worker": {"db"}}


def test_a_service_is_never_its_own_wired_dependency() -> None:
    """A wired module injecting the HTTP service itself adds no self-edge (no cycle of one)."""

    class Worker(Service):
        uses_wiring = True

    c = container(["tests.wired.by_string"], worker=providers.Singleton(Worker))
    c.cache = providers.Singleton(Worker)  # Provider["cache"] now names a wiring user
    assert deps(c)["cache"] == {"db"}


def test_an_instance_resolves_to_its_own_providers(built: list[Any]) -> None:
    """On a container instance (as the application has), markers map to the instance's providers,
    and nothing is instantiated."""
    journal.clear()
    instance = container(["tests.wired.by_class", "tests.wired.closing"])()
    built.append(instance)
    assert deps(instance)["http"] == {"db"}
    assert journal == []


def test_unwire_after_stop_leaves_other_applications_wired(built: list[Any]) -> None:
    """Unwiring one container never unwires modules that another container wired since."""
    first = container(["tests.wired.by_string"])()
    second = container(["tests.wired.by_string"])()
    built += [first, second]
    assert unwire_container(first) == []  # the module is wired to the second one now
    assert by_string.by_name() is second.db()
    assert unwire_container(second) == ["tests.wired.by_string"]
    assert type(by_string.by_name()).__name__ == "Provide"  # unwired: the marker itself
    assert second.wired_to_modules == []


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_lifespan_runs_after_the_wired_database(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A FastAPI lifespan using the database starts after it (even a slow one) and ends before it
    stops; endpoints answer; the modules are unwired once the application stopped."""
    monkeypatch.setattr(Db, "start_delay", 0.3)
    journal.clear()
    overrides = {"logging.file": str(tmp_path / "app.log")}
    async with run_app(wired_app.App, overrides=overrides, config_dir=str(tmp_path)) as harness:
        http = harness.service("http")
        async with httpx.AsyncClient(base_url=http.url) as client:
            response = await client.get("/ready")
        assert response.json() == {"ready": True}
        app = harness.app
    unwire_container(app.container)  # where the runner calls it after the last stop
    assert journal == [
        "db started",
        "lifespan startup (db ready=True)",
        "lifespan shutdown (db ready=True)",
        "db stopped",
    ]
    assert type(wired_app.database()).__name__ == "Provide"


@pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")
def test_building_applications_repeatedly_mixed_with_testclient(
    built: list[Any], tmp_path: Path
) -> None:
    """Apps built one after another, and FastAPI's TestClient on a container of the test's own:
    each sees its own container, whatever the order."""
    from fastapi.testclient import TestClient

    apps = [wired_app.App(config_dir=tmp_path), wired_app.App(config_dir=tmp_path)]
    own = wired_app.Container()
    built += [a.container for a in apps] + [own]
    for a in apps:
        unwire_container(a.container)  # stopped apps: the module is wired to `own`
    own.db().ready = True
    with TestClient(wired_app.api) as client:
        assert client.get("/ready").json() == {"ready": True}
    assert unwire_container(own) == ["tests.wired.by_class", "tests.wired.app"]


# -- settings providers -----------------------------------------------------------------------


def test_configuration_named_settings_is_a_problem() -> None:
    """A ``providers.Configuration`` named settings would be replaced by the Settings object."""

    class C(containers.DeclarativeContainer):
        settings = providers.Configuration()

    (problem,) = settings_provider_problems(C)
    assert "C.settings is a providers.Configuration" in problem
    assert "providers.Dependency(instance_of=Settings)" in problem


def test_settings_dependency_under_another_name_is_a_problem() -> None:
    """``config = providers.Dependency(instance_of=Settings)`` is never filled: rename it."""

    class C(containers.DeclarativeContainer):
        config = providers.Dependency(instance_of=Settings)

    assert settings_provider_problems(C) == [
        "C.config expects the settings, but the application fills only a provider named "
        "'settings': rename 'config' to 'settings'"
    ]


def test_unfilled_configuration_read_by_a_service_is_a_problem() -> None:
    """``config = providers.Configuration()`` read by a service, and no settings provider."""

    class C(containers.DeclarativeContainer):
        config = providers.Configuration()
        db = providers.Singleton(Db, url=config.database.url)
        filled = providers.Configuration(default={"a": 1})
        other = providers.Singleton(Db, a=filled.a)

    (problem,) = settings_provider_problems(C)
    assert problem.startswith("C.config is a providers.Configuration that nothing fills")
    assert "service(s) db" in problem


def test_settings_dependency_of_another_settings_class() -> None:
    """``settings`` expecting a class the application does not load is reported."""

    class Mine(Settings): ...

    class C(containers.DeclarativeContainer):
        settings = providers.Dependency(instance_of=Mine)

    assert settings_provider_problems(C, Mine) == []
    (problem,) = settings_provider_problems(C, Settings)
    assert "C.settings expects Mine, but the application loads Settings" in problem


def test_the_usual_container_has_no_problem() -> None:
    """The documented shape passes."""
    assert settings_provider_problems(Base) == []
    assert settings_provider_problems(wired_app.Container) == []


def test_application_class_is_unaffected_by_wiring_discovery() -> None:
    """Discovery on the class (as `check` validates names) needs no instance."""
    assert isinstance(wired_app.App, type) and issubclass(wired_app.App, Application)
    assert deps(wired_app.Container) == {"db": set(), "http": {"db"}}


def test_a_wired_module_that_cannot_be_imported_is_a_graph_error() -> None:
    """A wrong name in wiring_config: a GraphError naming it and how relative names resolve."""
    from framework._engine.errors import GraphError

    with pytest.raises(GraphError, match=r"wiring_config names '\.nowhere'.*resolve against tests"):
        discover_graph(service_providers(container([".nowhere"])))
