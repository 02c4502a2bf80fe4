"""The pytest plugin of the framework's testing kit (registered through ``pytest11``).

Fixtures:

- ``framework_app_class``: the Application under test; from the ini option ``framework_app``
  (``module:App``), or override the fixture.
- ``framework_overrides``: settings overrides (dotted keys); override the fixture to change them.
- ``framework_app``: a started application (a `framework.testing.Harness`), stopped after the test,
  with leak checks.
- ``framework_client``: an httpx client bound to the app's HTTP service, in-process.

Async tests that use these fixtures are run by anyio automatically (asyncio unless the
``anyio_backend`` fixture says otherwise): no marker or event-loop plumbing needed.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import pytest

_FIXTURES = {"framework_app", "framework_client"}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("framework_app", "module:App that the framework_app fixture runs", default="")


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run tests using the framework's fixtures on asyncio (the built-in services need it),
    unless the project defines its own ``anyio_backend`` fixture."""
    if not _FIXTURES & set(metafunc.fixturenames) or "anyio_backend" not in metafunc.fixturenames:
        return
    definitions = metafunc._arg2fixturedefs.get("anyio_backend", ())
    if definitions and definitions[-1].func.__module__ == "anyio.pytest_plugin":
        metafunc.parametrize("anyio_backend", ["asyncio"], scope="module")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        function = getattr(item, "function", None)
        fixtures = set(getattr(item, "fixturenames", ()))
        if (
            function is not None
            and inspect.iscoroutinefunction(function)
            and fixtures & _FIXTURES
            and item.get_closest_marker("anyio") is None
        ):
            item.add_marker(pytest.mark.anyio)


@pytest.fixture
def framework_overrides() -> dict[str, Any]:
    """Settings overrides for ``framework_app``; override this fixture to set your own."""
    return {}


@pytest.fixture
def framework_app_class(request: pytest.FixtureRequest) -> Any:
    """The Application class under test (ini option ``framework_app``, or override the fixture)."""
    from framework.cli import load_target

    target = str(request.config.getini("framework_app") or "")
    if not target:
        pytest.fail(
            "set `framework_app = package.app:App` in the pytest ini options, "
            "or define a `framework_app_class` fixture returning your Application class",
            pytrace=False,
        )
    return load_target(target)


@pytest.fixture
async def framework_app(
    anyio_backend: Any, framework_app_class: Any, framework_overrides: dict[str, Any]
) -> AsyncIterator[Any]:
    """A started application (`framework.testing.Harness`); stopped and leak-checked after."""
    from framework.testing import run_app

    async with run_app(framework_app_class, overrides=framework_overrides) as harness:
        yield harness


@pytest.fixture
def framework_client(framework_app: Any) -> Any:
    """An httpx.AsyncClient bound to the application's HTTP service (no socket needed)."""
    return framework_app.client()
