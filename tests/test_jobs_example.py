"""The job queue example (examples/jobs) keeps exactly-once through a rolling restart and a SIGTERM.

`framework run app:App --workers 4` (cwd examples/jobs, two consumers per worker) on a real
PostgreSQL started by the test. 1200 jobs are enqueued through the example's own endpoint
(`POST /jobs`, a new connection per request) while the consumers work; SIGHUP replaces every worker
meanwhile; then 800 more are inserted straight into the table, and SIGTERM lands while they are
being worked. The supervisor exits 0 with jobs left; a second run (no workers) does the rest. Every
job is then done exactly once: ``done_count`` (incremented in the transaction that claims the job)
is 1 for all 2000, and each has its one effect row.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests._process import REPO, framework_env, free_port, with_sets
from tests.postgres import PostgresServer

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

EXAMPLE = REPO / "examples" / "jobs"
THROUGH_ENDPOINT = 1200
INSERTED = 800
TOTAL = THROUGH_ENDPOINT + INSERTED
TIMEOUT = 45.0  # any one wait; the whole test takes far less
# A rolling restart replaces the 4 workers one after the other, each within TIMEOUT (a worker of a
# loaded machine can take 20 s to be ready); the enqueuing goes on meanwhile.
RESTART_TIMEOUT = 4 * TIMEOUT


def sql(server: PostgresServer, query: str) -> list[tuple[object, ...]]:
    import psycopg

    with psycopg.connect(server.dsn, autocommit=True, connect_timeout=10) as connection:
        cursor = connection.execute(query)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description is not None else []


def done_count(server: PostgresServer) -> int:
    return int(sql(server, "SELECT count(done_at) FROM jobs")[0][0])  # type: ignore[call-overload]


def start(server: PostgresServer, port: int, log: Path, *workers: str) -> subprocess.Popen[bytes]:
    sets = with_sets(f"http.port={port}", "jobs.poll_interval=0.1")
    with log.open("wb") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "framework", "run", "app:App", *workers, *sets],
            cwd=EXAMPLE,
            env=framework_env({"APP_DATABASE__URL": server.url}),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def wait(
    condition: Callable[[], bool],
    what: str,
    proc: subprocess.Popen[bytes],
    log: Path,
    within: float = TIMEOUT,
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and proc.poll() is None:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(
        f"not within {within} s: {what}\n{log.read_text(errors='replace')[-4000:]}"
    )


def logged(log: Path, text: str) -> Callable[[], bool]:
    return lambda: text in log.read_text(errors="replace")


def finish(proc: subprocess.Popen[bytes], log: Path) -> int:
    try:
        return proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"no exit within {TIMEOUT} s:\n{log.read_text()[-4000:]}") from None


def enqueue(port: int, numbers: range, statuses: list[int]) -> None:
    """POST /jobs for each number, a connection per request; bounded in count and time."""
    deadline = time.monotonic() + RESTART_TIMEOUT
    for n in numbers:
        if time.monotonic() > deadline:
            return
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            body = json.dumps({"payload": {"n": n}})
            connection.request("POST", "/jobs", body, {"content-type": "application/json"})
            statuses.append(connection.getresponse().status)
        except OSError as exc:
            statuses.append(-1)
            print(f"job {n}: {type(exc).__name__}: {exc}")
        finally:
            connection.close()


def test_every_job_is_done_exactly_once_across_a_rolling_restart_and_a_sigterm(
    postgres: PostgresServer, tmp_path: Path
) -> None:
    began = time.monotonic()
    marks: dict[str, float] = {}

    def mark(what: str) -> None:
        marks[what] = round(time.monotonic() - began, 1)

    port = free_port()
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    # -- first run: 4 workers; enqueue through the endpoint; SIGHUP while the jobs are worked
    proc = start(postgres, port, first_log, "--workers", "4")
    try:
        wait(logged(first_log, "4 worker(s) ready"), "4 workers ready", proc, first_log)
        mark("ready")
        statuses: list[list[int]] = [[], []]
        half = THROUGH_ENDPOINT // 2
        clients = [
            threading.Thread(target=enqueue, args=(port, range(1, half + 1), statuses[0])),
            threading.Thread(
                target=enqueue, args=(port, range(half + 1, THROUGH_ENDPOINT + 1), statuses[1])
            ),
        ]
        for client in clients:
            client.start()
        wait(lambda: done_count(postgres) >= 100, "100 jobs done", proc, first_log)
        proc.send_signal(signal.SIGHUP)
        mark("sighup")
        done_at_sighup = done_count(postgres)
        restarted = logged(first_log, "rolling restart complete")
        wait(restarted, "the restart", proc, first_log, RESTART_TIMEOUT)
        mark("restarted")
        for client in clients:
            client.join(RESTART_TIMEOUT)
        mark("enqueued")
        answered = statuses[0] + statuses[1]
        assert answered == [201] * THROUGH_ENDPOINT, {s: answered.count(s) for s in set(answered)}

        # -- 800 more straight into the table; SIGTERM while they are being worked
        sql(
            postgres,
            "INSERT INTO jobs (payload) SELECT jsonb_build_object('n', g) "
            f"FROM generate_series({THROUGH_ENDPOINT + 1}, {TOTAL}) AS g",
        )
        before = done_count(postgres)
        wait(lambda: done_count(postgres) >= before + 100, "100 more jobs", proc, first_log)
        proc.send_signal(signal.SIGTERM)
        mark("sigterm")
        done_at_sigterm = done_count(postgres)
        code = finish(proc, first_log)
        mark("exited")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    first = first_log.read_text(errors="replace")
    assert code == 0, first[-4000:]
    assert "4 worker(s) replaced" in first, first[-4000:]
    # 8 consumers stopped by the rolling restart, 8 by the SIGTERM: each finished its job in hand
    warm_first = len(re.findall(r"consumer_[12] .*run warm", first))
    assert warm_first == 16, first[-4000:]
    assert "run cold" not in first, first[-4000:]
    left_by_first = TOTAL - done_count(postgres)
    assert left_by_first > 0, "the SIGTERM came after the last job: nothing was cut in the middle"

    # -- second run, no workers: it does the rest, then stops
    proc = start(postgres, free_port(), second_log)
    try:
        wait(lambda: done_count(postgres) == TOTAL, "all jobs done", proc, second_log)
        mark("all done")
        proc.send_signal(signal.SIGTERM)
        code = finish(proc, second_log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    second = second_log.read_text(errors="replace")
    assert code == 0, second[-4000:]

    # -- exactly once
    [(jobs, distinct, lost, twice, effects, processes)] = sql(
        postgres,
        """SELECT count(*),
                  count(DISTINCT payload->>'n'),
                  count(*) FILTER (WHERE done_count = 0 OR done_at IS NULL),
                  count(*) FILTER (WHERE done_count > 1),
                  (SELECT count(*) FROM job_effects),
                  count(DISTINCT done_by)
           FROM jobs""",
    )
    figures = {
        "jobs": jobs,
        "through the endpoint": THROUGH_ENDPOINT,
        "inserted": INSERTED,
        "done at SIGHUP": done_at_sighup,
        "done at SIGTERM": done_at_sigterm,
        "left by the first run": left_by_first,
        "processes that did jobs": processes,
        "rolling restarts": first.count("rolling restart complete"),
        "workers replaced": sum(int(n) for n in re.findall(r"(\d+) worker\(s\) replaced", first)),
        "consumers stopped warm/cold (first run)": (
            warm_first,
            len(re.findall(r"consumer_[12] .*run cold", first)),
        ),
        "consumers stopped warm/cold (second run)": (
            len(re.findall(r"consumer_[12] .*run warm", second)),
            len(re.findall(r"consumer_[12] .*run cold", second)),
        ),
        "lost": lost,
        "duplicates": twice,
        "effects": effects,
        "seconds": round(time.monotonic() - began, 1),
        "timeline": marks,
    }
    print("\njob example figures:", json.dumps(figures))
    assert (jobs, distinct, effects) == (TOTAL, TOTAL, TOTAL), figures
    assert (lost, twice) == (0, 0), figures
    # the first workers, their replacements and the second run all did some of the work
    assert isinstance(processes, int) and processes > 4, figures
