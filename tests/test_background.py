"""Background work that finishes: warm stop for ``run()``, spawned tasks and Starlette/FastAPI
``BackgroundTasks`` drained before the database stops. Real processes (`framework run`), real
SIGTERM, a real SQLite file (`tests.background_apps`)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from tests._process import finish, free_port, spawn, wait_for, with_sets
from tests.sample_apps import read_journal

pytestmark = pytest.mark.slow


def run(tmp_path: Path, *sets: str, target: str = "ConsumerApp") -> subprocess.Popen[str]:
    return spawn(
        tmp_path,
        "run",
        f"tests.background_apps:{target}",
        "--report",
        str(tmp_path / "report.json"),
        *with_sets(
            f'work.journal="{tmp_path / "journal.txt"}"',
            f"database.url='sqlite+aiosqlite:///{tmp_path}/db.sqlite'",
            *sets,
        ),
    )


def journal(tmp_path: Path) -> list[str]:
    return read_journal(tmp_path / "journal.txt")


def rows(tmp_path: Path) -> list[str]:
    with sqlite3.connect(tmp_path / "db.sqlite") as connection:
        return [r[0] for r in connection.execute("SELECT what FROM rows")]


def services(tmp_path: Path) -> dict[str, dict[str, object]]:
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    return {entry["service"]: entry for entry in report["services"]}


def test_sigterm_mid_unit_lets_the_unit_finish_and_run_return(tmp_path: Path) -> None:
    """A consumer whose unit takes 0.5 s, SIGTERM in the middle of one: the unit completes,
    ``run()`` returns on its own (warm), exit 0."""
    proc = run(tmp_path, "work.unit=0.5")
    wait_for(tmp_path / "journal.txt", "unit 2 begin")
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    lines = journal(tmp_path)
    assert lines.index("unit 2 done") < lines.index("run returned"), lines
    assert "unit 3 begin" not in lines
    assert services(tmp_path)["consumer"]["run"] == "warm"
    assert "run warm" in err


def test_a_unit_past_the_drain_timeout_is_cancelled_cold(tmp_path: Path) -> None:
    """The same with a 2 s unit and ``drain_timeout = 0.2``: cancelled cold, the timeline says so,
    exit 0."""
    proc = run(tmp_path, "work.unit=2.0", "services.consumer.drain_timeout=0.2")
    wait_for(tmp_path / "journal.txt", "unit 1 begin")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "unit 1 done" not in journal(tmp_path) and "run returned" not in journal(tmp_path)
    assert services(tmp_path)["consumer"]["run"] == "cold"
    assert "run cold" in err


def test_a_spawned_task_finishes_before_the_database_stops(tmp_path: Path) -> None:
    """A spawned task that writes 1 s after it started, SIGTERM at 0.2 s: the row is there after
    exit, written before the database began to stop."""
    proc = run(tmp_path, "work.write_after=1.0")
    wait_for(tmp_path / "journal.txt", "writer started")
    time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert rows(tmp_path) == ["spawned"]
    lines = journal(tmp_path)
    assert lines.index("wrote spawned") < lines.index("db stopping"), lines


def test_sigusr2_lists_the_spawned_tasks_still_running_with_their_service(tmp_path: Path) -> None:
    """SIGUSR2's status line of a service names its spawned tasks still running (not one that
    has ended); at SIGTERM the one still running past ``drain_timeout`` is cancelled and named in
    the timeline and the report, and nothing is written."""
    log = tmp_path / "app.log"
    proc = run(
        tmp_path,
        "work.write_after=60",
        "services.writer.drain_timeout=0.2",
        f"logging.file='{log}'",
    )
    wait_for(tmp_path / "journal.txt", "warmed up")
    wait_for(tmp_path / "journal.txt", "writer started")
    proc.send_signal(signal.SIGUSR2)
    deadline = time.monotonic() + 20
    while "status: service 'writer'" not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "SIGUSR2 stops nothing"
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    status = [line for line in log.read_text().splitlines() if "status: service" in line]
    [writer] = [line for line in status if "service 'writer'" in line]
    assert "status: service 'writer' started, spawned tasks running: write later" in writer
    assert "warm up" not in writer  # ended before the snapshot: not listed
    assert not [line for line in status if "spawned" in line and "'writer'" not in line], status
    assert services(tmp_path)["writer"]["tasks_cancelled"] == ["write later"]
    assert "tasks cancelled: write later" in err
    assert rows(tmp_path) == []


def test_a_background_task_of_a_response_finishes_before_the_database_stops(
    tmp_path: Path,
) -> None:
    """A FastAPI endpoint whose BackgroundTask writes a row 1 s after the response, SIGTERM right
    after the response: the row is there, and the database's stop came after it."""
    port = free_port()
    proc = run(tmp_path, f"http.port={port}", "work.write_after=1.0", target="WebApp")
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
    assert "background" in rows(tmp_path)
    lines = journal(tmp_path)
    assert lines.index("wrote background") < lines.index("db stopping"), lines
