"""The pytest plugin of the framework's testing kit (registered through ``pytest11``).

Fixtures:

- ``framework_app_class``: the Application under test; from the ini option ``framework_app``
  (``module:App``), or override the fixture.
- ``framework_overrides``: settings overrides (dotted keys); override the fixture to change them.
- ``framework_providers``: container providers to replace (name -> provider or object); override
  the fixture to swap a service or a client for a fake.
- ``framework_app``: a started application (a `framework.testing.Harness`), stopped after the
  test (or the module, or the session: ini option ``framework_app_scope``; the application itself
  is the ``framework_harness`` fixture, at that scope), with leak checks. It runs on an asyncio
  event loop of its own, in a background thread, so it serves whatever runs the tests: anyio,
  pytest-asyncio, or plain synchronous tests.
- ``framework_client``: an httpx.AsyncClient on the app's HTTP service's real socket, so
  ``framework_client.stream(...)`` streams.

Async tests that use these fixtures are run by anyio automatically (asyncio unless the
``anyio_backend`` fixture says otherwise): no marker or event-loop plumbing needed. Tests in a
module that imports ``run_app`` (or ``run_app_sync``) run on asyncio only as well. Where
pytest-asyncio runs every async test (``asyncio_mode = auto``), it is left to run them.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

_FIXTURES = {"framework_app", "framework_client"}
_RUNNERS = ("run_app", "run_app_sync")
_SCOPES = ("function", "class", "module", "package", "session")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("framework_app", "module:App that the framework_app fixture runs", default="")
    parser.addini(
        "framework_app_scope",
        "scope of the framework_app fixture: function (default), class, module, package, session",
        default="function",
    )


def pytest_configure(config: pytest.Config) -> None:
    fixtures = _AsyncioAutoFixtures() if _asyncio_auto_mode(config) else _AnyioFixtures()
    config.pluginmanager.register(fixtures, "framework-fixtures")
    scope = _configured_scope(config)
    if scope not in _SCOPES:
        raise pytest.UsageError(
            f"framework_app_scope = {scope!r} in the pytest ini options: use one of "
            + ", ".join(_SCOPES)
        )


def _configured_scope(config: pytest.Config) -> str:
    return str(config.getini("framework_app_scope") or "function").strip()


def _app_scope(fixture_name: str, config: pytest.Config) -> Any:
    """The scope of the application fixture and those it uses, from ``framework_app_scope``."""
    scope = _configured_scope(config)
    return scope if scope in _SCOPES else "function"  # a bad one: pytest_configure said so


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests using the framework's fixtures, or in a module using ``run_app``, on asyncio
    (the built-in services need it), unless the project defines its own ``anyio_backend``."""
    if "anyio_backend" not in metafunc.fixturenames:
        return
    if not _FIXTURES & set(metafunc.fixturenames) and not _uses_run_app(metafunc.module):
        return
    from framework._compat.pytest import fixture_module

    if fixture_module(metafunc, "anyio_backend") == "anyio.pytest_plugin":
        metafunc.parametrize("anyio_backend", ["asyncio"], scope="module")


def _uses_run_app(module: Any) -> bool:
    from framework import testing

    return any(getattr(module, name, None) is getattr(testing, name) for name in _RUNNERS)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _asyncio_auto_mode(config):
        return  # pytest-asyncio runs every async test and fixture itself
    for item in items:
        function = getattr(item, "function", None)
        fixtures = set(getattr(item, "fixturenames", ()))
        if (
            function is not None
            and inspect.iscoroutinefunction(function)
            and fixtures & _FIXTURES
            and item.get_closest_marker("anyio") is None
            and item.get_closest_marker("asyncio") is None
        ):
            item.add_marker(pytest.mark.anyio)


def _asyncio_auto_mode(config: pytest.Config) -> bool:
    if not config.pluginmanager.has_plugin("asyncio"):
        return False
    mode = config.getoption("asyncio_mode", None) or config.getini("asyncio_mode")
    return str(mode) == "auto"


@pytest.fixture(scope=_app_scope)
def framework_overrides() -> dict[str, Any]:
    """Settings overrides for ``framework_app``; override this fixture to set your own."""
    return {}


@pytest.fixture(scope=_app_scope)
def framework_providers() -> dict[str, Any]:
    """Providers ``framework_app`` replaces before anything is created (name -> a provider, or
    any object); override this fixture to swap in fakes."""
    return {}


@pytest.fixture(scope=_app_scope)
def framework_app_class(request: pytest.FixtureRequest) -> Any:
    """The Application class under test (ini option ``framework_app``, or override the fixture)."""
    from framework._cli.commands import load_target

    target = str(request.config.getini("framework_app") or "")
    if not target:
        pytest.fail(
            "set `framework_app = package.app:App` in the pytest ini options, "
            "or define a `framework_app_class` fixture returning your Application class",
            pytrace=False,
        )
    return load_target(target)


@pytest.fixture(scope=_app_scope)
def framework_harness(
    framework_app_class: Any,
    framework_overrides: dict[str, Any],
    framework_providers: dict[str, Any],
) -> Iterator[Any]:
    """The running application behind ``framework_app``, at the ``framework_app_scope`` scope.

    It runs on an asyncio loop in a background thread: tests reach it through its real socket
    (``framework_client``, ``framework_app.websocket(...)``) from any event loop, or none.
    """
    from framework.testing import run_app_sync

    with run_app_sync(
        framework_app_class, overrides=framework_overrides, providers=framework_providers
    ) as harness:
        yield harness


class _AnyioFixtures:
    """``framework_app`` and ``framework_client`` for tests run by anyio: they take
    ``anyio_backend``, so async tests and ``framework_client`` run on the test's anyio loop."""

    @pytest.fixture
    def framework_app(self, anyio_backend: Any, framework_harness: Any) -> Any:
        """A started application (`framework.testing.Harness`); stopped and leak-checked after
        the test, or the module or session with ``framework_app_scope``."""
        return framework_harness

    @pytest.fixture
    async def framework_client(self, anyio_backend: Any, framework_app: Any) -> AsyncIterator[Any]:
        """An httpx.AsyncClient on the application's HTTP service (its real socket: responses
        stream), opened and closed on the test's own event loop."""
        async with _client(framework_app) as client:
            yield client


class _AsyncioAutoFixtures:
    """The same under pytest-asyncio's auto mode: no ``anyio_backend``, so pytest-asyncio alone
    runs the async tests and ``framework_client``, on its loop."""

    @pytest.fixture
    def framework_app(self, framework_harness: Any) -> Any:
        """A started application (`framework.testing.Harness`)."""
        return framework_harness

    @pytest.fixture
    async def framework_client(self, framework_app: Any) -> AsyncIterator[Any]:
        """An httpx.AsyncClient on the application's HTTP service (its real socket)."""
        async with _client(framework_app) as client:
            yield client


def _client(harness: Any) -> Any:
    import httpx

    return httpx.AsyncClient(base_url=harness.url())
