"""The lifecycle engine, on asyncio and trio: ordering, overlap, rollback, every timeout path."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from framework._engine.errors import FrameworkError, ShutdownError, StartupError
from framework._engine.events import (
    Bound,
    Event,
    Outcome,
    RollingBack,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStopFailed,
    ServiceStopped,
)
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle, LifecycleState
from framework._engine.service import Service, ServiceState

pytestmark = pytest.mark.anyio


class Probe(Service):
    """A service that records what happens to it in a shared journal."""

    def __init__(
        self,
        name: str,
        journal: list[tuple[str, str, float]],
        *,
        start_delay: float = 0.0,
        stop_delay: float = 0.0,
        start_error: Exception | None = None,
        stop_error: Exception | None = None,
        stop_shielded: bool = False,
    ) -> None:
        self.name = name
        self.journal = journal
        self.start_delay = start_delay
        self.stop_delay = stop_delay
        self.start_error = start_error
        self.stop_error = stop_error
        self.stop_shielded = stop_shielded

    def log(self, what: str) -> None:
        self.journal.append((self.name, what, anyio.current_time()))

    async def start(self) -> None:
        self.log("start")
        await anyio.sleep(self.start_delay)
        if self.start_error:
            raise self.start_error
        self.log("started")

    async def stop(self) -> None:
        self.log("stop")
        with anyio.CancelScope(shield=self.stop_shielded):
            await anyio.sleep(self.stop_delay)
        if self.stop_error:
            raise self.stop_error
        self.log("stopped")


def build(
    deps: Mapping[str, str],
    journal: list[tuple[str, str, float]],
    events: list[Event] | None = None,
    options: Mapping[str, dict[str, Any]] | None = None,
    **kwargs: Any,
) -> Lifecycle:
    graph = DependencyGraph.from_edges({k: v.split() for k, v in deps.items()})
    services = {name: Probe(name, journal, **(options or {}).get(name, {})) for name in deps}
    return Lifecycle(
        services, graph, on_event=events.append if events is not None else None, **kwargs
    )


def names(journal: list[tuple[str, str, float]], what: str) -> list[str]:
    return [name for name, w, _ in journal if w == what]


def when(journal: list[tuple[str, str, float]], name: str, what: str) -> float:
    return next(t for n, w, t in journal if n == name and w == what)


DIAMOND = {"a": "", "b": "a", "c": "a", "d": "b c"}


async def test_diamond_starts_in_order_and_stops_in_exact_reverse() -> None:
    """Each service starts after its dependencies and stops after its dependents."""
    journal: list[tuple[str, str, float]] = []
    lc = build(DIAMOND, journal)
    await lc.start()
    assert lc.state is LifecycleState.STARTED
    started = names(journal, "started")
    assert started[0] == "a" and started[-1] == "d"
    await lc.stop()
    stopped = names(journal, "stopped")
    assert stopped[0] == "d" and stopped[-1] == "a"
    assert all(rec.service.state is ServiceState.STOPPED for rec in lc)


async def test_diamond_is_ready_on_the_critical_path() -> None:
    """Start and stop times 0.3/0.5/0.5/0.3: b and c overlap (each begins before the other ends),
    so the walk takes the critical path, not the serial sum. Checked as an order of events, which
    a loaded machine cannot break, not as a window of seconds."""
    journal: list[tuple[str, str, float]] = []
    delays = {"a": 0.3, "b": 0.5, "c": 0.5, "d": 0.3}
    lc = build(
        DIAMOND,
        journal,
        options={n: {"start_delay": t, "stop_delay": t} for n, t in delays.items()},
    )
    await lc.start()
    # b and c run at the same time: each began before the other finished
    assert when(journal, "b", "start") < when(journal, "c", "started")
    assert when(journal, "c", "start") < when(journal, "b", "started")
    assert when(journal, "d", "start") >= max(
        when(journal, "b", "started"), when(journal, "c", "started")
    )
    await lc.stop()
    assert when(journal, "b", "stop") < when(journal, "c", "stopped")
    assert when(journal, "c", "stop") < when(journal, "b", "stopped")
    assert when(journal, "a", "stop") >= max(
        when(journal, "b", "stopped"), when(journal, "c", "stopped")
    )


async def test_a_service_waits_only_for_its_own_dependencies() -> None:
    """Not layer by layer: `e` (layer 2) starts while `slow` (layer 1) is still starting."""
    journal: list[tuple[str, str, float]] = []
    deps = {"a": "", "slow": "a", "fast": "a", "e": "fast"}
    lc = build(deps, journal, options={"slow": {"start_delay": 0.2}, "e": {"stop_delay": 0.2}})
    await lc.start()
    assert when(journal, "e", "started") < when(journal, "slow", "started")
    await lc.stop()
    # and in reverse: `slow` stops while `e` is still stopping
    assert when(journal, "slow", "stopped") < when(journal, "e", "stopped")


async def test_failed_start_rolls_back_exactly_what_began() -> None:
    """c fails: d never starts, c's stop is still called, then b and a in reverse; exit via StartupError."""
    journal: list[tuple[str, str, float]] = []
    events: list[Event] = []
    options = {
        "b": {"start_delay": 0.5},
        "c": {"start_delay": 0.02, "start_error": RuntimeError("no disk")},
    }
    lc = build(DIAMOND, journal, events, options=options)
    with pytest.raises(StartupError) as info:
        await lc.start()
    assert [(e.service, e.phase.value, e.outcome.value) for e in info.value.errors] == [
        ("c", "start", "failed")
    ]
    assert "service 'c' failed to start: RuntimeError: no disk" in str(info.value)
    assert "d" not in names(journal, "start")
    assert lc.records["d"].start_outcome is Outcome.NEVER_STARTED
    # b was in flight when c failed: cancelled, and stopped like the others
    assert lc.records["b"].start_outcome is Outcome.CANCELLED
    assert set(names(journal, "stop")) == {"a", "b", "c"}
    assert names(journal, "stopped")[-1] == "a"
    rollback = next(e for e in events if isinstance(e, RollingBack))
    assert set(rollback.services) == {"a", "b", "c"}
    assert lc.state is LifecycleState.STOPPED
    await lc.stop()  # idempotent after a rollback


async def test_start_timeout_names_service_and_bound() -> None:
    journal: list[tuple[str, str, float]] = []
    events: list[Event] = []
    lc = build(
        {"db": ""},
        journal,
        events,
        options={"db": {"start_delay": 5}},
        start_bounds={"db": Bound(0.01, "services.db.start_timeout")},
    )
    with pytest.raises(
        StartupError, match=r"'db' did not start within 0.01 s \(services.db.start_timeout\)"
    ):
        await lc.start()
    failed = next(e for e in events if isinstance(e, ServiceStartFailed))
    assert failed.outcome is Outcome.TIMED_OUT
    assert names(journal, "stopped") == ["db"]


async def test_startup_timeout_bounds_the_whole_startup() -> None:
    """Each start fits its own bound, but the chain exceeds startup_timeout."""
    journal: list[tuple[str, str, float]] = []
    lc = build(
        {"a": "", "b": "a"},
        journal,
        options={"a": {"start_delay": 0.03}, "b": {"start_delay": 5}},
        startup_timeout=Bound(0.5, "lifecycle.startup_timeout"),
    )
    with pytest.raises(
        StartupError, match=r"'b' did not start within 0.5 s \(lifecycle.startup_timeout\)"
    ):
        await lc.start()
    assert lc.records["b"].start_outcome is Outcome.TIMED_OUT
    assert names(journal, "stopped") == ["b", "a"]


async def test_failed_stop_is_recorded_and_shutdown_goes_on() -> None:
    journal: list[tuple[str, str, float]] = []
    events: list[Event] = []
    lc = build(DIAMOND, journal, events, options={"b": {"stop_error": OSError("flush failed")}})
    await lc.start()
    with pytest.raises(ShutdownError, match="service 'b' failed to stop: OSError: flush failed"):
        await lc.stop()
    assert names(journal, "stopped") == ["d", "c", "a"] or names(journal, "stopped")[-1] == "a"
    assert [type(e).__name__ for e in events if isinstance(e, ServiceStopFailed)] == [
        "ServiceStopFailed"
    ]
    assert lc.records["b"].service.state is ServiceState.FAILED
    await lc.stop()  # idempotent: nothing more happens, no second error
    assert names(journal, "stop").count("a") == 1


async def test_stop_timeout_names_the_bound_and_shutdown_goes_on() -> None:
    journal: list[tuple[str, str, float]] = []
    lc = build(
        {"a": "", "b": "a"},
        journal,
        options={"b": {"stop_delay": 5}},
        stop_bounds={"b": Bound(0.01, "services.b.stop_timeout")},
    )
    await lc.start()
    with pytest.raises(
        ShutdownError, match=r"'b' did not stop within 0.01 s \(services.b.stop_timeout\)"
    ):
        await lc.stop()
    assert names(journal, "stopped") == ["a"]
    assert lc.records["b"].stop_outcome is Outcome.TIMED_OUT


async def test_stop_ignoring_cancellation_does_not_hold_back_its_dependencies() -> None:
    """A shielded stop overruns its bound: its dependency stops anyway, and the shutdown returns
    without waiting for it; it is reported timed out, and finishes on its own later."""
    journal: list[tuple[str, str, float]] = []
    lc = build(
        {"a": "", "b": "a"},
        journal,
        options={"b": {"stop_delay": 0.3, "stop_shielded": True}},
        stop_bounds={"b": Bound(0.01, "services.b.stop_timeout")},
    )
    await lc.start()
    with pytest.raises(ShutdownError, match="'b' did not stop within"):
        await lc.stop()
    assert names(journal, "stopped") == ["a"]
    assert lc.records["b"].stop_outcome is Outcome.TIMED_OUT
    await anyio.sleep(0.4)
    assert names(journal, "stopped") == ["a", "b"]


async def test_stop_blocked_in_a_thread_does_not_hold_back_the_shutdown() -> None:
    """Blocking code in a worker thread cannot be cancelled; the shutdown returns at the bound."""
    import threading

    release = threading.Event()

    class Blocking(Service):
        async def stop(self) -> None:
            await anyio.to_thread.run_sync(release.wait, 5)

    lc = Lifecycle(
        {"x": Blocking()},
        DependencyGraph.from_edges({"x": []}),
        stop_bounds={"x": Bound(0.05, "services.x.stop_timeout")},
    )
    await lc.start()
    began = anyio.current_time()
    with pytest.raises(ShutdownError, match=r"'x' did not stop within 0\.05 s"):
        await lc.stop()
    assert anyio.current_time() - began < 1.0
    release.set()
    await anyio.sleep(0.05)


async def test_each_stop_gets_what_is_left_of_the_shutdown_budget() -> None:
    """Stops with generous bounds are cut by shutdown_timeout; the bound says so."""
    journal: list[tuple[str, str, float]] = []
    lc = build(
        {"a": "", "b": "a"},
        journal,
        options={"a": {"stop_delay": 5}, "b": {"stop_delay": 0.04}},
        shutdown_timeout=Bound(0.08, "lifecycle.shutdown_timeout"),
    )
    await lc.start()
    began = anyio.current_time()
    with pytest.raises(ShutdownError) as info:
        await lc.stop()
    assert anyio.current_time() - began < 1.0
    (error,) = info.value.errors
    assert error.service == "a" and error.outcome is Outcome.TIMED_OUT
    assert error.bound is not None and "lifecycle.shutdown_timeout" in error.bound.source
    assert error.bound.seconds is not None and error.bound.seconds < 0.08


async def test_zero_bound_times_out_immediately() -> None:
    journal: list[tuple[str, str, float]] = []
    lc = build(
        {"a": ""}, journal, options={"a": {"stop_delay": 1}}, stop_bounds={"a": Bound(0, "x")}
    )
    await lc.start()
    with pytest.raises(ShutdownError):
        await lc.stop()


async def test_no_bound_waits() -> None:
    """A bound of None means no bound."""
    journal: list[tuple[str, str, float]] = []
    lc = build(
        {"a": ""},
        journal,
        options={"a": {"start_delay": 0.01}},
        start_bounds={"a": Bound(None, "services.a.start_timeout")},
        startup_timeout=Bound(None, "lifecycle.startup_timeout"),
    )
    await lc.start()
    await lc.stop()
    assert names(journal, "stopped") == ["a"]


async def test_abort_during_startup_rolls_back() -> None:
    """A signal during startup aborts it: in-flight starts are cancelled and stopped, the rest never start."""
    journal: list[tuple[str, str, float]] = []
    lc = build({"a": "", "b": "a"}, journal, options={"a": {"start_delay": 5}})
    raised: list[StartupError] = []

    async def start() -> None:
        try:
            await lc.start()
        except StartupError as exc:
            raised.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(start)
        await anyio.wait_all_tasks_blocked()
        lc.abort_start("SIGTERM")
    assert raised[0].errors == ()  # aborting is not an error; the stops all succeeded
    assert raised[0].reason == "SIGTERM"
    assert names(journal, "start") == ["a"] and names(journal, "stopped") == ["a"]
    assert lc.records["a"].start_outcome is Outcome.CANCELLED


async def test_cancelling_start_from_outside_still_rolls_back() -> None:
    journal: list[tuple[str, str, float]] = []
    lc = build({"a": "", "b": "a"}, journal, options={"b": {"start_delay": 5}})
    with anyio.move_on_after(0.05):
        await lc.start()
    assert names(journal, "stopped") == ["b", "a"]
    assert lc.state is LifecycleState.STOPPED


async def test_forced_shutdown_records_cancelled_stops() -> None:
    """Cancelling the shutdown (a second signal) cancels the stops in flight and those not begun."""
    journal: list[tuple[str, str, float]] = []
    lc = build({"a": "", "b": "a"}, journal, options={"b": {"stop_delay": 5}})
    await lc.start()
    with anyio.move_on_after(0.05):
        await lc.stop()
    assert lc.records["b"].stop_outcome is Outcome.CANCELLED
    assert lc.records["a"].stop_outcome is Outcome.CANCELLED
    assert "stop" not in [w for n, w, _ in journal if n == "a"]


class Worker(Service):
    def __init__(self, journal: list[str], crash: bool = False) -> None:
        self.journal = journal
        self.crash = crash

    async def run(self) -> None:
        self.journal.append("run")
        if self.crash:
            raise ValueError("boom")
        try:
            await anyio.sleep_forever()
        finally:
            self.journal.append("run cancelled")

    async def stop(self) -> None:
        self.journal.append("stop")


async def test_run_is_cancelled_before_stop() -> None:
    journal: list[str] = []
    graph = DependencyGraph.from_edges({"w": []})
    lc = Lifecycle({"w": Worker(journal)}, graph)
    async with anyio.create_task_group() as tg:
        await lc.start(tg)
        await anyio.wait_all_tasks_blocked()
        await lc.stop()
    assert journal == ["run", "run cancelled", "stop"]


async def test_run_crash_is_reported_and_stop_still_called() -> None:
    journal: list[str] = []
    crashes: list[tuple[str, BaseException]] = []
    graph = DependencyGraph.from_edges({"w": []})
    lc = Lifecycle(
        {"w": Worker(journal, crash=True)}, graph, on_crash=lambda n, e: crashes.append((n, e))
    )
    async with anyio.create_task_group() as tg:
        await lc.start(tg)
        await anyio.wait_all_tasks_blocked()
        assert [n for n, _ in crashes] == ["w"]
        await lc.stop()
    assert journal == ["run", "stop"]
    assert "failed to run: ValueError: boom" in str(lc.records["w"].errors[0])


async def test_stop_is_called_even_when_run_outlives_the_bound() -> None:
    """run() that ignores cancellation past the stop bound: stop() is still called (timed out)."""
    journal: list[str] = []

    class Stubborn(Service):
        async def run(self) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                with anyio.CancelScope(shield=True):
                    await anyio.sleep(0.2)

        async def stop(self) -> None:
            journal.append("stop")

    lc = Lifecycle(
        {"s": Stubborn()},
        DependencyGraph.from_edges({"s": []}),
        stop_bounds={"s": Bound(0.05, "services.s.stop_timeout")},
    )
    async with anyio.create_task_group() as tg:
        await lc.start(tg)
        await anyio.wait_all_tasks_blocked()
        with pytest.raises(ShutdownError, match="'s' did not stop within"):
            await lc.stop()
    assert journal == ["stop"]


async def test_run_needs_a_task_group() -> None:
    lc = Lifecycle({"w": Worker([])}, DependencyGraph.from_edges({"w": []}))
    with pytest.raises(FrameworkError, match="pass a task group"):
        await lc.start()


async def test_events_tell_the_story() -> None:
    journal: list[tuple[str, str, float]] = []
    events: list[Event] = []
    lc = build({"a": "", "b": "a"}, journal, events)
    await lc.start()
    await lc.stop()
    kinds = [(type(e).__name__, getattr(e, "service", "")) for e in events]
    assert kinds == [
        ("ServiceStarting", "a"),
        ("ServiceStarted", "a"),
        ("ServiceStarting", "b"),
        ("ServiceStarted", "b"),
        ("StartupFinished", ""),
        ("ShutdownStarted", ""),
        ("ServiceStopping", "b"),
        ("ServiceStopped", "b"),
        ("ServiceStopping", "a"),
        ("ServiceStopped", "a"),
        ("ShutdownFinished", ""),
    ]
    assert all(e.duration >= 0 for e in events if isinstance(e, ServiceStarted | ServiceStopped))


async def test_broken_event_handler_does_not_break_the_lifecycle(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def broken(event: Event) -> None:
        raise RuntimeError("handler bug")

    lc = build({"a": ""}, [], None)
    lc.subscribe(broken)
    await lc.start()
    await lc.stop()
    assert "handler bug" in capsys.readouterr().err


async def test_state_errors() -> None:
    lc = build({"a": ""}, [])
    await lc.stop()  # never started: nothing to do
    with pytest.raises(FrameworkError, match="cannot start: the lifecycle is stopped"):
        await lc.start()


async def test_services_without_dunder_init_call() -> None:
    """A subclass that never calls super().__init__() still has its state kept."""

    class Bare(Service):
        def __init__(self) -> None:
            self.x = 1

    bare = Bare()
    assert bare.state is ServiceState.CREATED
    lc = Lifecycle({"bare": bare}, DependencyGraph.from_edges({"bare": []}))
    await lc.start()
    assert bare.state is ServiceState.STARTED
    await lc.stop()
    assert bare.state is ServiceState.STOPPED


async def test_ten_thousand_no_op_services() -> None:
    """10k services with random dependencies start and stop (speed is measured in `make bench`)."""
    from tests.test_graph import random_dag

    graph = DependencyGraph.from_edges(random_dag(10_000))
    services = {name: Service() for name in graph.deps}
    lc = Lifecycle(services, graph)
    await lc.start()
    await lc.stop()
    assert all(s.state is ServiceState.STOPPED for s in services.values())
