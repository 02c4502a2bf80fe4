"""The Application in-process, on asyncio and trio: styles, readiness, bounds, exit codes."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import containers, providers

from framework import Application, ConfigError, ExitCode, FrameworkError, Service, StartupError
from framework._engine.events import Bound, Event, ServiceStopped
from framework._engine.readiness import AppState
from tests.sample_apps import App, read_journal


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config/ or .env of the repo leaks in; logs stay quiet."""
    monkeypatch.chdir(tmp_path)


def make(tmp_path: Path, **overrides: Any) -> App:
    journal = tmp_path / "journal.txt"
    return App(
        overrides={"behaviour.journal": str(journal), "logging.level": "WARNING", **overrides}
    )


def stopped_order(tmp_path: Path) -> list[str]:
    return [
        line.split()[0]
        for line in read_journal(tmp_path / "journal.txt")
        if line.endswith(" stopped") and not line.startswith("app")
    ]


@pytest.mark.anyio
async def test_running_context_starts_and_stops_in_reverse(tmp_path: Path) -> None:
    app = make(tmp_path)
    async with app.running():
        assert app.readiness.state is AppState.READY
        assert all(r.service.state == "started" for r in app.lifecycle)  # type: ignore[union-attr]
    assert app.readiness.state is AppState.STOPPED
    order = stopped_order(tmp_path)
    assert order[0] == "d" and order[-1] == "a"
    assert app.exit_code == ExitCode.OK


@pytest.mark.anyio
async def test_explicit_start_and_idempotent_stop(tmp_path: Path) -> None:
    app = make(tmp_path)
    await app.start()
    assert await app.stop() == 0
    assert await app.stop() == 0
    assert stopped_order(tmp_path).count("a") == 1


@pytest.mark.anyio
async def test_running_stops_when_the_body_raises(tmp_path: Path) -> None:
    app = make(tmp_path)
    with pytest.raises(ValueError, match="body"):
        async with app.running():
            raise ValueError("body")
    assert sorted(stopped_order(tmp_path)) == ["a", "b", "c", "d"]


@pytest.mark.anyio
async def test_startup_failure_raises_after_rollback(tmp_path: Path) -> None:
    app = make(tmp_path, **{"behaviour.start_error": ["b"]})
    with pytest.raises(StartupError, match="service 'b' failed to start"):
        await app.start()
    assert app.exit_code == ExitCode.FAILURE
    assert "d" not in stopped_order(tmp_path)
    assert await app.stop() == ExitCode.FAILURE  # nothing more to do


@pytest.mark.anyio
async def test_crash_in_run_requests_shutdown_with_exit_1(tmp_path: Path) -> None:
    app = make(tmp_path, **{"behaviour.crash_after": {"c": 0.1}})
    async with app.running():
        with anyio.fail_after(5):
            await app.wait_for_shutdown()
    assert app.exit_code == ExitCode.FAILURE


@pytest.mark.anyio
async def test_crash_during_startup_aborts_it_with_exit_1(tmp_path: Path) -> None:
    app = make(tmp_path, **{"behaviour.crash_after": {"b": 0}, "behaviour.start_delay": {"d": 5}})
    with pytest.raises(StartupError, match="'b' crashed"):
        await app.start()
    assert app.exit_code == ExitCode.FAILURE
    assert app.lifecycle is not None and app.lifecycle.records["d"].start_outcome == "cancelled"


@pytest.mark.anyio
async def test_shutdown_delay_flips_readiness_first_and_counts_against_the_budget(
    tmp_path: Path,
) -> None:
    app = make(tmp_path, **{"lifecycle.shutdown_delay": 0.2, "lifecycle.shutdown_timeout": 0.3})
    seen: list[tuple[AppState, list[str], list[str]]] = []
    events: list[Event] = []
    app.subscribe(events.append)

    async def observe() -> None:
        await anyio.sleep(0.05)
        kinds = [type(e).__name__ for e in events if "Shutdown" in type(e).__name__]
        seen.append((app.readiness.state, stopped_order(tmp_path), kinds))

    await app.start()
    async with anyio.create_task_group() as tg:
        tg.start_soon(observe)
        await app.stop()
    # not ready, announced, still serving during the delay
    assert seen == [(AppState.SHUTTING_DOWN, [], ["ShutdownStarted"])]
    assert app.lifecycle is not None
    # the stops had what was left of 0.3 s after the 0.2 s delay
    assert app.lifecycle.records["a"].stop_outcome == "ok"


@pytest.mark.anyio
async def test_request_shutdown_exit_code_and_events(tmp_path: Path) -> None:
    app = make(tmp_path)
    seen: list[Event] = []
    app.subscribe(seen.append)
    async with app.running():
        app.request_shutdown(exit_code=3, reason="maintenance")
        app.request_shutdown(exit_code=4, reason="ignored: the first request wins")
        await app.wait_for_shutdown()
    assert app.exit_code == 3
    assert [e.service for e in seen if isinstance(e, ServiceStopped)][0] == "d"


@pytest.mark.anyio
async def test_constructor_failure_is_a_startup_failure_and_nothing_is_stopped() -> None:
    journal: list[str] = []

    class Good(Service):
        async def stop(self) -> None:
            journal.append("good stop")

    class Broken(Service):
        def __init__(self, good: Good) -> None:
            raise RuntimeError("bad wiring")

    class C(containers.DeclarativeContainer):
        good = providers.Singleton(Good)
        broken = providers.Singleton(Broken, good=good)

    class BrokenApp(Application):
        container_class = C

    app = BrokenApp()
    with pytest.raises(
        StartupError, match="service 'broken' could not be created: RuntimeError: bad wiring"
    ):
        await app.start()
    assert journal == []  # good's start never began, so its stop is never called
    assert app.exit_code == ExitCode.FAILURE


def test_bounds_precedence(tmp_path: Path) -> None:
    class Slow(Service):
        start_timeout = 7.0

    class C(containers.DeclarativeContainer):
        slow = providers.Singleton(Slow)
        plain = providers.Singleton(Service)

    class BoundsApp(Application):
        container_class = C

    app = BoundsApp(overrides={"lifecycle.stop_timeout": 4, "services.plain.start_timeout": 2})
    assert app.bounds("slow") == (
        Bound(7.0, "Slow.start_timeout"),
        Bound(4.0, "lifecycle.stop_timeout"),
    )
    assert app.bounds("plain")[0] == Bound(2.0, "services.plain.start_timeout")
    app = BoundsApp(overrides={"services.slow.start_timeout": 1})
    assert app.bounds("slow")[0] == Bound(1.0, "services.slow.start_timeout")


def test_unknown_service_section_is_reported_with_the_other_problems() -> None:
    with pytest.raises(ConfigError) as info:
        App(overrides={"services.dd.stop_timeout": 1, "lifecycle.stop_timeout": -1})
    problems = info.value.problems
    assert len(problems) == 2
    assert any(
        p.startswith("services.dd: no service named 'dd'; did you mean 'd'?")
        and p.endswith("(from override services.dd.stop_timeout)")
        for p in problems
    )


def test_settings_provider_receives_the_loaded_settings() -> None:
    app = App(overrides={"http.port": 8123})
    assert app.container.settings() is app.settings
    assert app.settings.http.port == 8123


def test_container_class_is_required() -> None:
    class Empty(Application):
        pass

    with pytest.raises(FrameworkError, match="container_class is not set"):
        Empty()


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_run_returns_the_code_and_restores_signal_handlers(tmp_path: Path, backend: str) -> None:
    """run() from the main thread, shut down from another thread; handlers are put back."""

    def marker(signum: int, frame: object) -> None:  # pragma: no cover - never called
        pass

    previous = signal.signal(signal.SIGTERM, marker)
    try:
        app = make(tmp_path)
        journal = tmp_path / "journal.txt"

        def stopper() -> None:
            for _ in range(500):
                if "app ready" in read_journal(journal):
                    app.request_shutdown(exit_code=0, reason="from a thread")
                    return
                threading.Event().wait(0.01)

        thread = threading.Thread(target=stopper)
        thread.start()
        assert app.run(backend=backend) == 0
        thread.join(5)
        assert signal.getsignal(signal.SIGTERM) is marker
        assert sorted(stopped_order(tmp_path)) == ["a", "b", "c", "d"]
    finally:
        signal.signal(signal.SIGTERM, previous)
