"""Background work that finishes: warm stop for ``run()``, spawned tasks and Starlette/FastAPI
``BackgroundTasks`` drained before the database stops. Real processes (`framework run`), real
SIGTERM, a real SQLite file or the PostgreSQL server the tests start (`tests.background_apps`)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests._process import REPO, finish, free_port, run_cli, spawn, wait_for, with_sets
from tests.postgres import PostgresServer
from tests.sample_apps import read_journal

pytestmark = pytest.mark.slow


class Database:
    """Where the app under test writes its rows, and how the test reads them back."""

    def __init__(self, url: str, postgres: PostgresServer | None = None) -> None:
        self.url, self.postgres = url, postgres

    def rows(self) -> list[str]:
        if self.postgres is None:
            with sqlite3.connect(self.url.removeprefix("sqlite+aiosqlite:///")) as connection:
                return [r[0] for r in connection.execute("SELECT what FROM rows")]
        import psycopg

        with psycopg.connect(self.postgres.dsn) as connection:
            return [r[0] for r in connection.execute("SELECT what FROM rows")]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """A SQLite file of the test's own, or the module's PostgreSQL server with no rows table."""
    if request.param == "sqlite":
        return Database(f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS rows")
    return Database(server.url, server)


def run(
    tmp_path: Path, *sets: str, target: str = "ConsumerApp", database: Database | None = None
) -> subprocess.Popen[str]:
    url = database.url if database else f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"
    return spawn(
        tmp_path,
        "run",
        f"tests.background_apps:{target}",
        "--report",
        str(tmp_path / "report.json"),
        *with_sets(
            f'work.journal="{tmp_path / "journal.txt"}"',
            f"database.url='{url}'",
            f"logging.file='{tmp_path / 'app.log'}'",
            *sets,
        ),
    )


def log_of(tmp_path: Path) -> str:
    path = tmp_path / "app.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


def next_unit(tmp_path: Path) -> int:
    """Once the startup is complete (a signal then is a shutdown, not an aborted startup), until
    the consumer begins its next unit; returns that unit's number."""
    deadline = time.monotonic() + 30
    while "startup complete" not in log_of(tmp_path):
        assert time.monotonic() < deadline, f"the startup never completed:\n{log_of(tmp_path)}"
        time.sleep(0.02)
    unit = sum(line.endswith(" begin") for line in journal(tmp_path)) + 1
    wait_for(tmp_path / "journal.txt", f"unit {unit} begin")
    return unit


def journal(tmp_path: Path) -> list[str]:
    return read_journal(tmp_path / "journal.txt")


def rows(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        return [r[0] for r in connection.execute("SELECT what FROM rows")]


def services(tmp_path: Path) -> dict[str, dict[str, object]]:
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    return {entry["service"]: entry for entry in report["services"]}


def test_sigterm_mid_unit_lets_the_unit_finish_and_run_return(
    tmp_path: Path, database: Database
) -> None:
    """A consumer whose unit takes 0.5 s, SIGTERM in the middle of one: the unit completes,
    ``run()`` returns on its own (warm), exit 0."""
    proc = run(tmp_path, "work.unit=0.5", database=database)
    unit = next_unit(tmp_path)
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    lines = journal(tmp_path)
    assert lines.index(f"unit {unit} done") < lines.index("run returned"), lines
    assert f"unit {unit + 1} begin" not in lines
    assert services(tmp_path)["consumer"]["run"] == "warm"
    assert "run warm" in err


def test_a_unit_past_the_drain_timeout_is_cancelled_cold(tmp_path: Path) -> None:
    """The same with a 2 s unit and ``drain_timeout = 0.2``: cancelled cold, the timeline says so,
    exit 0."""
    proc = run(tmp_path, "work.unit=2.0", "services.consumer.drain_timeout=0.2")
    unit = next_unit(tmp_path)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "during startup" not in err
    lines = journal(tmp_path)
    assert f"unit {unit} done" not in lines and "run returned" not in lines, lines
    assert services(tmp_path)["consumer"]["run"] == "cold"
    assert "run cold" in err


def test_a_half_second_unit_past_a_drain_timeout_of_0_2_is_cancelled_cold(tmp_path: Path) -> None:
    """A consumer whose unit takes 0.5 s and ``drain_timeout = 0.2``, SIGTERM in the middle of a
    unit: the unit is cancelled (cold), ``run()`` does not return on its own, the timeline says
    ``run cold``, exit 0. The proof needs the shutdown to begin within 0.2 s of the unit's begin
    (so that the drain ends before the unit would); the app journals how far into the unit it
    began, and an attempt that a loaded machine made later is run again (at most 3)."""
    for attempt in range(3):
        case = tmp_path / f"attempt-{attempt}"
        case.mkdir()
        proc = run(case, "work.unit=0.5", "services.consumer.drain_timeout=0.2")
        next_unit(case)
        proc.send_signal(signal.SIGTERM)
        code, err = finish(proc)
        assert code == 0, err
        assert "during startup" not in err
        lines = journal(case)
        [seen] = [line for line in lines if line.startswith("stopping set")]
        into, unit = float(seen.split()[2]), seen.split()[-1]
        if into < 0.2:
            break
    else:
        pytest.fail(f"3 attempts, the shutdown never began within 0.2 s of a unit: {seen}")
    assert f"unit {unit} begin" in lines and f"unit {unit} done" not in lines, lines
    assert "run returned" not in lines, lines
    assert services(case)["consumer"]["run"] == "cold"
    assert "run cold" in err


def test_a_spawned_task_finishes_before_the_database_stops(
    tmp_path: Path, database: Database
) -> None:
    """A spawned task that writes 1 s after it started, SIGTERM at 0.2 s: the row is there after
    exit, written before the database began to stop."""
    proc = run(tmp_path, "work.write_after=1.0", database=database)
    wait_for(tmp_path / "journal.txt", "writer started")
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert database.rows() == ["spawned"]
    lines = journal(tmp_path)
    assert lines.index("wrote spawned") < lines.index("db stopping"), lines


def test_sigusr2_lists_the_spawned_tasks_still_running_with_their_service(tmp_path: Path) -> None:
    """SIGUSR2's status line of a service names its spawned tasks still running (not one that
    has ended); at SIGTERM the one still running past ``drain_timeout`` is cancelled and named in
    the timeline and the report, and nothing is written."""
    proc = run(tmp_path, "work.write_after=60", "services.writer.drain_timeout=0.2")
    next_unit(tmp_path)  # started
    wait_for(tmp_path / "journal.txt", "warmed up")
    proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 20
    while "status: service 'writer'" not in log_of(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "SIGUSR2 stops nothing"
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    status = [line for line in log_of(tmp_path).splitlines() if "status: service" in line]
    [writer] = [line for line in status if "service 'writer'" in line]
    assert "status: service 'writer' started, spawned tasks running: write later" in writer
    assert "warm up" not in writer  # ended before the snapshot: not listed
    assert not [line for line in status if "spawned" in line and "'writer'" not in line], status
    assert services(tmp_path)["writer"]["tasks_cancelled"] == ["write later"]
    assert "tasks cancelled: write later" in err
    assert rows(tmp_path) == []


def test_a_spawned_task_that_raises_is_logged_with_its_name_and_the_app_goes_on(
    tmp_path: Path,
) -> None:
    """A spawned task raises: one error line names the service and the task and says the
    application goes on; the consumer keeps taking units, and SIGTERM still ends it with exit 0
    (a failed spawned task does not make the exit code 1)."""
    proc = run(tmp_path, "work.unit=0.1", "work.fail_after=0.3")
    wait_for(tmp_path / "journal.txt", "flaky write raises")
    unit = next_unit(tmp_path)
    wait_for(tmp_path / "journal.txt", f"unit {unit + 1} begin")  # the application went on
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    failed = [line for line in err.splitlines() if "spawned task" in line]
    assert len(failed) == 1, failed
    assert (
        "service 'writer': spawned task 'flaky write' failed: RuntimeError: upstream went away; "
        "the application goes on"
    ) in failed[0]
    assert "ERROR" in failed[0]


def test_a_background_task_of_a_response_finishes_before_the_database_stops(
    tmp_path: Path, database: Database
) -> None:
    """A FastAPI endpoint whose BackgroundTask writes a row 1 s after the response, SIGTERM right
    after the response: the row is there, and the database's stop came after it."""
    port = free_port()
    proc = run(
        tmp_path, f"http.port={port}", "work.write_after=1.0", target="WebApp", database=database
    )
    wait_for(tmp_path / "journal.txt", "db started")
    deadline = time.monotonic() + 20
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    break
        except OSError:
            pass
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)
    request = urllib.request.Request(f"http://127.0.0.1:{port}/order", method="POST")
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "background" in database.rows()
    lines = journal(tmp_path)
    assert lines.index("wrote background") < lines.index("db stopping"), lines


def test_framework_check_counts_a_configured_drain_timeout_in_the_budget() -> None:
    """`framework check`: a service's stop takes its drain_timeout plus its stop bound, so the
    chain writer -> db is 10 + 10 s without one and 7 + 10 + 10 s with drain_timeout 7 on the
    writer, which a 25 s shutdown_timeout no longer holds."""
    target = "tests.background_apps:ConsumerApp"

    def check(*sets: str) -> str:
        result = run_cli(REPO, "check", target, *with_sets(*sets))
        return result.stdout + result.stderr  # the budget lines go to stderr

    plain = check()
    assert "longest stop chain 20 s = 20 s <= lifecycle.shutdown_timeout 30 s" in plain, plain
    drained = check("services.writer.drain_timeout=7")
    assert "longest stop chain 27 s = 27 s <= lifecycle.shutdown_timeout 30 s" in drained, drained
    short = check("services.writer.drain_timeout=7", "lifecycle.shutdown_timeout=25")
    assert "the longest chain of stop bounds 27 s (writer -> db)" in short, short
    assert "exceeds lifecycle.shutdown_timeout 25 s" in short, short


def test_a_shutdown_forced_during_the_drain_calls_no_stop(tmp_path: Path) -> None:
    """A 5 s unit with drain_timeout 10: the first SIGTERM begins the drain; a second one forces
    the shutdown in the middle of it: the unit does not finish, the consumer's ``stop()`` is not
    called, its stop is recorded as cancelled, exit 130."""
    proc = run(tmp_path, "work.unit=5", "services.consumer.drain_timeout=10")
    unit = next_unit(tmp_path)
    proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 20
    while not any(line.startswith("stopping set") for line in journal(tmp_path)):
        assert time.monotonic() < deadline, journal(tmp_path)
        time.sleep(0.02)
    time.sleep(0.3)  # the consumer's drain is under way (its unit has seconds to go)
    assert proc.poll() is None
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 130, err
    lines = journal(tmp_path)
    assert f"unit {unit} done" not in lines and "consumer stop" not in lines, lines
    assert services(tmp_path)["consumer"]["stop"]["outcome"] == "cancelled", err
