"""The testing kit: in-process runs, provider overrides, the event spy, leak checks, the plugin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio
import pytest
from dependency_injector import containers, providers

from framework import Application, Service, Settings
from framework.testing import LeakError, run_app, run_app_sync
from tests.sample_apps import App

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


@pytest.mark.anyio
async def test_run_app_spies_on_the_lifecycle() -> None:
    async with run_app(App, overrides={"logging.level": "WARNING"}) as harness:
        assert harness.events.started()[0] == "a"
        assert harness.service("d").name == "d"
    assert harness.events.stopped()[0] == "d"
    assert harness.events.stopped()[-1] == "a"
    assert harness.events.failed() == []


class Fake(Service):
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def start(self) -> None:
        self.calls.append("start")

    async def stop(self) -> None:
        self.calls.append("stop")


@pytest.mark.anyio
async def test_a_service_swapped_for_a_fake() -> None:
    fake = Fake()
    async with run_app(
        App, providers={"b": fake}, overrides={"logging.level": "WARNING"}
    ) as harness:
        assert harness.service("b") is fake
    assert fake.calls == ["start", "stop"]
    # the fake has no dependencies of its own, so only d waits for it
    assert harness.events.stopped().index("d") < harness.events.stopped().index("b")


@pytest.mark.anyio
async def test_unknown_provider_override_is_named() -> None:
    with pytest.raises(LookupError, match="no provider 'nope'"):
        async with run_app(App, providers={"nope": Fake()}):
            pass


class Leaky(Service):
    async def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(
            asyncio.sleep(30), name="forgotten-poller"
        )

    async def stop(self) -> None:
        pass  # forgets to cancel its task


class LeakyContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    leaky = providers.Singleton(Leaky)


class LeakyApp(Application):
    container_class = LeakyContainer


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_a_leaked_task_fails_with_its_name() -> None:
    with pytest.raises(LeakError, match="task 'forgotten-poller'"):
        async with run_app(LeakyApp, overrides={"logging.level": "WARNING"}) as harness:
            leaky = harness.service("leaky")
    leaky.task.cancel()
    await anyio.sleep(0)


def test_sync_helper_runs_on_a_background_loop() -> None:
    with run_app_sync(App, overrides={"logging.level": "WARNING"}) as harness:
        assert harness.app.readiness.ready
    assert harness.events.stopped()[-1] == "a"


REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def user_project(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.setenv("PYTHONPATH", str(REPO))
    return pytester


def test_the_plugin_runs_a_users_async_test_without_markers(user_project: pytest.Pytester) -> None:
    """A user's test: fixtures from the plugin, no anyio marker, run on asyncio only."""
    pytester = user_project
    pytester.makeini("[pytest]\nframework_app = tests.sample_apps:App\n")
    pytester.makepyfile(
        test_user="""
        import pytest

        @pytest.fixture
        def framework_overrides():
            return {"logging.level": "WARNING", "lifecycle.stop_timeout": 3}

        async def test_app(framework_app):
            assert framework_app.app.settings.lifecycle.stop_timeout == 3
            assert framework_app.app.readiness.ready
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)


def test_the_plugin_explains_a_missing_app(user_project: pytest.Pytester) -> None:
    pytester = user_project
    pytester.makepyfile(test_user="async def test_app(framework_app):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*set `framework_app = package.app:App`*"])


@pytest.mark.anyio
async def test_an_override_that_is_not_a_service_is_a_clear_startup_error() -> None:
    from framework import StartupError

    with pytest.raises(StartupError, match="'b': its provider returned int, not a Service"):
        async with run_app(App, providers={"b": 42}, overrides={"logging.level": "CRITICAL"}):
            pass


# -- clients on the real socket, the plugin's fixtures and scopes ---------------------------------


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_the_client_streams_an_endless_event_stream() -> None:
    """harness.client().stream reads an endless SSE stream line by line; leaving it does not hang
    the test, and the application still stops cleanly (leak checks on)."""
    from tests.kit_app import App as KitApp

    async with run_app(KitApp, overrides={"logging.level": "WARNING"}) as harness:
        seen: list[str] = []
        with anyio.fail_after(10):
            async with harness.client().stream("GET", "/events") as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        seen.append(line)
                    if len(seen) == 3:
                        break
        assert seen == ["data: 0", "data: 1", "data: 2"]
    assert harness.app.exit_code == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_websockets_on_the_real_socket() -> None:
    """harness.websocket(path) connects to the HTTP service's real socket."""
    from tests.kit_app import App as KitApp

    async with run_app(KitApp, overrides={"logging.level": "WARNING"}) as harness:
        with anyio.fail_after(10):
            async with harness.websocket("/ws") as ws:
                await ws.send("hi")
                assert await ws.recv() == "echo hi"
        in_process = harness.client(in_process=True)
        assert (await in_process.get("/hello")).text == "hello you"


def test_the_plugin_replaces_providers_streams_and_shares_a_module_app(
    user_project: pytest.Pytester,
) -> None:
    """framework_providers swaps a provider; framework_app_scope = module starts the app once
    for the module; framework_client streams; a plain sync test can use framework_app."""
    pytester = user_project
    pytester.makeini("[pytest]\nframework_app = tests.kit_app:App\nframework_app_scope = module\n")
    pytester.makepyfile(
        test_user="""
        import pytest

        apps = []

        class Shouting:
            def greet(self, name):
                return f"HELLO {name.upper()}"

        @pytest.fixture(scope="module")
        def framework_overrides():
            return {"logging.level": "WARNING"}

        @pytest.fixture(scope="module")
        def framework_providers():
            return {"greeter": Shouting()}

        async def test_replaced(framework_app, framework_client):
            apps.append(id(framework_app.app))
            assert (await framework_client.get("/hello?name=ann")).text == "HELLO ANN"

        async def test_streams(framework_app, framework_client):
            apps.append(id(framework_app.app))
            async with framework_client.stream("GET", "/events") as response:
                async for line in response.aiter_lines():
                    if line:
                        assert line == "data: 0"
                        break

        def test_sync(framework_app):
            apps.append(id(framework_app.app))
            assert framework_app.app.readiness.ready
            assert len(set(apps)) == 1  # one application for the module
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=3)


def test_a_bad_scope_is_a_clear_usage_error(user_project: pytest.Pytester) -> None:
    """framework_app_scope must be a pytest scope: anything else names the option."""
    pytester = user_project
    pytester.makeini("[pytest]\nframework_app = tests.kit_app:App\nframework_app_scope = forever\n")
    pytester.makepyfile(test_user="def test_app(framework_app):\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.stderr.fnmatch_lines(["*framework_app_scope = 'forever'*use one of function*"])


def test_the_plugin_under_pytest_asyncio_auto_mode(user_project: pytest.Pytester) -> None:
    """With pytest-asyncio in auto mode, it alone runs the async tests and framework_client; the
    application (on its own loop) answers them. Skipped when pytest-asyncio is not installed."""
    pytest.importorskip("pytest_asyncio")
    pytester = user_project
    pytester.makeini(
        "[pytest]\nframework_app = tests.kit_app:App\nasyncio_mode = auto\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_user="""
        async def test_hello(framework_client):
            assert (await framework_client.get("/hello")).text == "hello you"

        def test_sync(framework_app):
            assert framework_app.app.readiness.ready
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=2)


def test_tests_calling_run_app_run_on_asyncio_only(user_project: pytest.Pytester) -> None:
    """A module that imports run_app: its anyio tests run on asyncio only (not once per
    installed backend), unless the project defines anyio_backend itself."""
    pytester = user_project
    pytester.makepyfile(
        test_user="""
        import pytest
        import sniffio
        from framework.testing import run_app
        from tests.kit_app import App

        @pytest.mark.anyio
        async def test_app():
            assert sniffio.current_async_library() == "asyncio"
            async with run_app(App, overrides={"logging.level": "WARNING"}) as harness:
                assert harness.app.readiness.ready
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-q")
    result.assert_outcomes(passed=1)
