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
