"""The restart policy of run(): the pure budget, the engine on asyncio and trio, real processes."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import anyio
import pytest
from dependency_injector import containers, providers

from framework import Application, Service, Settings
from framework._engine.events import (
    Event,
    EventBus,
    ServiceCrashed,
    ServiceRestarted,
    ServiceRestarting,
    ServiceStarted,
    ServiceStarting,
    ServiceStopped,
)
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle
from framework._engine.readiness import Readiness
from framework._engine.readiness_events import follow_lifecycle
from framework._engine.restart import MAX_BACKOFF, NEVER, RestartPolicy
from tests._process import finish, spawn, wait_for, with_sets
from tests.sample_apps import read_journal, record

# -- the policy: pure arithmetic ------------------------------------------------------------------


def test_never_restarts_by_default() -> None:
    """The default policy never restarts: a crash shuts the application down, as before."""
    assert NEVER.backoff([], 0.0) is None
    assert RestartPolicy.from_settings(Settings().service("any")) == NEVER


def test_backoff_doubles_up_to_the_cap_and_the_budget_counts_the_window() -> None:
    """0.5, 1, 2 s...; at most MAX_BACKOFF; no restart past restart_max in the window, and the
    count (and the backoff) starts over once earlier restarts leave the window."""
    policy = RestartPolicy(on_failure=True, max_restarts=3, window=60.0, initial_backoff=0.5)
    assert [policy.backoff([0.0] * n, 1.0) for n in range(4)] == [0.5, 1.0, 2.0, None]
    assert policy.backoff([0.0, 0.0, 0.0], 61.0) == 0.5  # all three left the window
    assert policy.backoff([0.0, 50.0], 61.0) == 1.0  # one of two still in it
    many = RestartPolicy(on_failure=True, max_restarts=100, window=1e9, initial_backoff=1.0)
    assert many.backoff([0.0] * 20, 1.0) == MAX_BACKOFF


def test_policy_from_settings() -> None:
    """services.<name>.restart* become the policy; restart_max 0 means no restart at all."""
    settings = Settings.model_validate(
        {
            "services": {
                "w": {
                    "restart": "on-failure",
                    "restart_max": 5,
                    "restart_window": 10,
                    "restart_backoff": 0.25,
                },
                "z": {"restart": "on-failure", "restart_max": 0},
            }
        }
    )
    assert RestartPolicy.from_settings(settings.service("w")) == RestartPolicy(True, 5, 10.0, 0.25)
    assert RestartPolicy.from_settings(settings.service("z")).backoff([], 0.0) is None


# -- the engine, on asyncio and trio -------------------------------------------------------------


class Flaky(Service):
    """run() raises ``failures`` times (or always, with None), then runs until cancelled."""

    def __init__(
        self, journal: list[str], failures: int | None, *, hold: anyio.Event | None = None
    ):
        self.journal, self.failures, self.hold = journal, failures, hold
        self.runs = 0

    async def start(self) -> None:
        self.journal.append("start")
        if self.runs and self.hold is not None:  # a restart waits for the test to let it go
            await self.hold.wait()

    async def run(self) -> None:
        self.runs += 1
        if self.failures is None or self.runs <= self.failures:
            await anyio.sleep(0)
            raise ConnectionError(f"transient failure {self.runs}")
        await anyio.sleep_forever()

    async def stop(self) -> None:
        self.journal.append("stop")


def engine(
    service: Service, policy: RestartPolicy, crashes: list[str]
) -> tuple[Lifecycle, list[tuple[float, Event]], Readiness]:
    readiness = Readiness()
    events: list[tuple[float, Event]] = []
    bus = EventBus(follow_lifecycle(readiness))
    bus.subscribe(lambda event: events.append((anyio.current_time(), event)))
    lifecycle = Lifecycle(
        {"w": service},
        DependencyGraph.from_edges({"w": []}),
        bus=bus,
        restart={"w": policy},
        on_crash=lambda name, error: crashes.append(f"{name}: {error}"),
    )
    return lifecycle, events, readiness


def of(events: list[tuple[float, Event]], kind: type) -> list[tuple[float, Event]]:
    return [(t, e) for t, e in events if isinstance(e, kind)]


async def wait_until(predicate: object, within: float = 5.0) -> None:
    with anyio.fail_after(within):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(0.005)


@pytest.mark.anyio
async def test_run_that_fails_twice_then_works_is_restarted_with_doubling_backoff() -> None:
    """Journal start, stop, start, stop, start; two ServiceRestarting events with the cause and
    backoffs 0.05 then 0.1 s, seen in the event times; no crash; the app goes on running."""
    journal: list[str] = []
    crashes: list[str] = []
    policy = RestartPolicy(on_failure=True, max_restarts=3, window=60.0, initial_backoff=0.05)
    lifecycle, events, readiness = engine(Flaky(journal, 2), policy, crashes)
    async with anyio.create_task_group() as tg:
        await lifecycle.start(tg)
        await wait_until(lambda: len(of(events, ServiceRestarted)) == 2)
        await anyio.sleep(0.05)
        assert journal == ["start", "stop", "start", "stop", "start"]
        assert crashes == [] and not lifecycle.crashed and readiness.ready
        restarting = [e for _, e in of(events, ServiceRestarting)]
        assert [(e.attempt, e.backoff) for e in restarting] == [(1, 0.05), (2, 0.1)]
        assert str(restarting[0].error) == "transient failure 1"
        stopped = [t for t, _ in of(events, ServiceStopped)]
        starting = [t for t, _ in of(events, ServiceStarting)][1:]
        gaps = [b - a for a, b in zip(stopped, starting, strict=True)]
        assert gaps[0] >= 0.05 and gaps[1] >= 0.1, gaps  # each backoff waited in full
        assert [r.cause for r in lifecycle.records["w"].restarts] == [
            "ConnectionError: transient failure 1",
            "ConnectionError: transient failure 2",
        ]
        await lifecycle.stop("done")
    assert journal[-1] == "stop" and journal.count("stop") == 3


@pytest.mark.anyio
async def test_run_that_always_fails_crashes_after_restart_max_restarts() -> None:
    """restart_max 3: three restarts, then the fourth failure is a crash (the runner's exit 1)."""
    journal: list[str] = []
    crashes: list[str] = []
    policy = RestartPolicy(on_failure=True, max_restarts=3, window=60.0, initial_backoff=0.01)
    lifecycle, events, _ = engine(Flaky(journal, None), policy, crashes)
    async with anyio.create_task_group() as tg:
        await lifecycle.start(tg)
        await wait_until(lambda: crashes)
        assert len(of(events, ServiceRestarting)) == 3
        assert len(of(events, ServiceCrashed)) == 1
        assert crashes == ["w: transient failure 4"] and lifecycle.crashed
        assert journal == ["start", "stop", "start", "stop", "start", "stop", "start"]
        await lifecycle.stop("crashed")
    assert journal.count("stop") == 4


@pytest.mark.anyio
async def test_readiness_is_not_ready_while_restarting() -> None:
    """From the failure until the restart's start() returns, readiness says which service and
    since when; ready again once it is back."""
    hold = anyio.Event()
    journal: list[str] = []
    policy = RestartPolicy(on_failure=True, max_restarts=3, window=60.0, initial_backoff=0.01)
    lifecycle, events, readiness = engine(Flaky(journal, 1, hold=hold), policy, [])
    async with anyio.create_task_group() as tg:
        await lifecycle.start(tg)
        await wait_until(lambda: journal == ["start", "stop", "start"])
        assert not readiness.ready
        assert readiness.details()["w"]["reason"] == "restarting"
        hold.set()
        await wait_until(lambda: of(events, ServiceRestarted))
        assert readiness.ready and readiness.details() == {}
        await lifecycle.stop("done")


@pytest.mark.anyio
async def test_shutdown_during_the_backoff_stops_nothing_twice() -> None:
    """A service the restart already stopped is not stopped again by the shutdown, which is
    clean; it is never started again."""
    journal: list[str] = []
    policy = RestartPolicy(on_failure=True, max_restarts=3, window=60.0, initial_backoff=30.0)
    lifecycle, events, _ = engine(Flaky(journal, None), policy, [])
    async with anyio.create_task_group() as tg:
        await lifecycle.start(tg)
        await wait_until(lambda: journal == ["start", "stop"])
        with anyio.fail_after(5):
            await lifecycle.stop("done")
    assert journal == ["start", "stop"]
    assert not lifecycle.stop_errors and not lifecycle.crashed
    assert len(of(events, ServiceStarted)) == 1


class FailsToRestart(Flaky):
    """run() fails once; the first restart's start() fails too; the second restart works."""

    async def start(self) -> None:
        self.journal.append("start")
        if self.journal.count("start") == 2:
            raise OSError("port still in use")


@pytest.mark.anyio
async def test_a_restart_whose_start_fails_counts_as_another_failure() -> None:
    """The failed start is stopped and restarted after a doubled backoff, within the budget."""
    journal: list[str] = []
    crashes: list[str] = []
    policy = RestartPolicy(on_failure=True, max_restarts=3, window=60.0, initial_backoff=0.01)
    lifecycle, events, readiness = engine(FailsToRestart(journal, 1), policy, crashes)
    async with anyio.create_task_group() as tg:
        await lifecycle.start(tg)
        await wait_until(lambda: of(events, ServiceRestarted))
        assert journal == ["start", "stop", "start", "stop", "start"]
        restarting = [e for _, e in of(events, ServiceRestarting)]
        assert [(e.attempt, e.backoff, type(e.error)) for e in restarting] == [
            (1, 0.01, ConnectionError),
            (2, 0.02, OSError),
        ]
        assert [e.attempt for _, e in of(events, ServiceRestarted)] == [2]
        assert readiness.ready and not crashes
        await lifecycle.stop("done")


# -- real processes: framework run, asyncio and trio ----------------------------------------------


class FlakySettings(Settings):
    journal: Path | None = None
    failures: int = -1  # -1: always


class FlakyWorker(Service):
    """run() raises while fewer than ``failures`` runs have been recorded (kept in a file)."""

    def __init__(self, settings: FlakySettings) -> None:
        self.s = settings

    def log(self, line: str) -> None:
        record(self.s.journal, f"worker {line}")

    async def start(self) -> None:
        self.log("start")

    async def run(self) -> None:
        runs = [line for line in read_journal(self.s.journal) if line == "worker run"]
        self.log("run")
        if self.s.failures < 0 or len(runs) < self.s.failures:
            raise ConnectionError("upstream went away")
        await anyio.sleep_forever()

    async def stop(self) -> None:
        self.log("stop")


class FlakyContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=FlakySettings)
    worker = providers.Singleton(FlakyWorker, settings)


class FlakyApp(Application):
    container_class = FlakyContainer
    settings_class = FlakySettings


class FlakyTrioApp(FlakyApp):
    backend = "trio"


def flaky_run(tmp_path: Path, app: str, failures: int, *sets: str) -> tuple[Path, Path, list[str]]:
    journal, report = tmp_path / "journal", tmp_path / "report.json"
    args = [
        "run",
        f"tests.test_restart:{app}",
        "--report",
        str(report),
        *with_sets(
            f"journal={journal}",
            f"failures={failures}",
            "services.worker.restart=on-failure",
            "services.worker.restart_backoff=0.05",
            *sets,
        ),
    ]
    return journal, report, args


@pytest.mark.parametrize("app", ["FlakyApp", "FlakyTrioApp"])
def test_process_keeps_running_after_two_failures_and_exits_0_on_sigterm(
    tmp_path: Path, app: str
) -> None:
    """framework run: two failures restarted, the app keeps running; SIGTERM exits 0; the log
    names each restart and its cause; the report counts both restarts."""
    journal, report, args = flaky_run(tmp_path, app, 2)
    proc = spawn(Path.cwd(), *args)
    wait_for(journal, "worker run")
    assert anyio.run(_third_run_lasts, journal), read_journal(journal)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    lines = read_journal(journal)
    starts_stops = [line for line in lines if line in ("worker start", "worker stop")]
    assert starts_stops == ["worker start", "worker stop"] * 2 + ["worker start", "worker stop"]
    assert (
        "service 'worker' failed: ConnectionError: upstream went away; restart 1 in 0.05 s" in err
    )
    assert "restart 2 in 0.1 s" in err
    assert "restarts 2" in err  # the timeline
    restarts = json.loads(report.read_text())["services"][0]["restarts"]
    assert [r["cause"] for r in restarts] == ["ConnectionError: upstream went away"] * 2
    assert [r["backoff"] for r in restarts] == [0.05, 0.1]


async def _third_run_lasts(journal: Path) -> bool:
    with anyio.move_on_after(20):
        while read_journal(journal).count("worker run") < 3:
            await anyio.sleep(0.02)
        await anyio.sleep(0.3)  # still running: no fourth run, no stop
        return read_journal(journal).count("worker run") == 3
    return False


@pytest.mark.parametrize("app", ["FlakyApp", "FlakyTrioApp"])
def test_process_that_always_fails_exits_1_after_restart_max_restarts(
    tmp_path: Path, app: str
) -> None:
    """restart_max 2: three runs (two restarts), then the orderly shutdown and exit 1."""
    journal, report, args = flaky_run(tmp_path, app, -1, "services.worker.restart_max=2")
    code, err = finish(spawn(Path.cwd(), *args))
    assert code == 1, err
    assert read_journal(journal).count("worker run") == 3
    assert read_journal(journal)[-1] == "worker stop"
    assert "service 'worker' crashed in run(): ConnectionError: upstream went away" in err
    payload = json.loads(report.read_text())
    assert payload["exit_code"] == 1 and len(payload["services"][0]["restarts"]) == 2
