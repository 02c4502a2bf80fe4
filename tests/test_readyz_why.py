"""``/readyz`` of a running application says why it is not ready, and the probes answer whatever
the load: each test runs ``python -m framework run tests.readyz_apps:<App>`` on a loopback port,
reads the probes on fresh connections, polls with a deadline (never a timing window), and ends
the process with SIGTERM."""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests._process import framework_env, free_port, with_sets

pytestmark = pytest.mark.slow

T = TypeVar("T")


@contextmanager
def running(tmp_path: Path, app: str, *sets: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``framework run tests.readyz_apps:APP`` on a free port, once started; its
    output goes to ``tmp_path/stdout.txt`` and ``stderr.txt``. Killed on the way out if it is
    still running (a test that expects an exit waits for it first)."""
    port = free_port()
    args = ["run", f"tests.readyz_apps:{app}", *with_sets(f"http.port={port}", *sets)]
    env = framework_env({"READYZ_RELEASE": str(tmp_path / "release")})
    with (tmp_path / "stdout.txt").open("wb") as out, (tmp_path / "stderr.txt").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "framework", *args],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=err,
        )
    try:
        eventually(lambda: get(port, "/hello")[0] == 200 or None, "/hello answers", proc=proc)
        started = "startup complete"  # the HTTP service answers a moment before it is logged
        eventually(lambda: started in output(tmp_path, "stderr") or None, started, proc=proc)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def get(port: int, path: str) -> tuple[int, str, str]:
    """GET ``path`` on a connection of its own: status, ``Connection`` header, body; status 0 when
    nothing answered."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.getheader("connection") or "", response.read().decode()
    except (OSError, http.client.HTTPException):
        return 0, "", ""
    finally:
        conn.close()


def eventually(
    found: Callable[[], T | None],
    what: str,
    *,
    proc: subprocess.Popen[bytes] | None = None,
    timeout: float = 20.0,
) -> T:
    """Poll ``found`` until it returns something not None; fail after ``timeout`` s, or at once
    when ``proc`` exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = found()
        if result is not None:
            return result
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process exited ({proc.returncode}) before: {what}")
        time.sleep(0.05)
    raise AssertionError(f"not within {timeout} s: {what}")


def readyz(port: int) -> tuple[int, dict[str, Any]] | None:
    """``/readyz``: its status and JSON body; None when nothing answered."""
    status, _, body = get(port, "/readyz")
    return (status, json.loads(body)) if status else None


def output(tmp_path: Path, name: str) -> str:
    return (tmp_path / f"{name}.txt").read_text()


def stop(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=timeout)


def test_readyz_names_a_hung_a_false_and_a_non_bool_check(tmp_path: Path) -> None:
    """``health_interval`` 0.2, ``health_timeout`` 0.5: a check that never returns (shielded), one
    that turns False at its 3rd call and one that returns ``"down"`` all end up in the 503 body,
    each with its reason, while ``/livez`` stays 200; the checks go on (the False one is called
    round after round beside the hung one) and the non-bool warning is logged once."""
    sets = ("lifecycle.health_interval=0.2", "lifecycle.health_timeout=0.5")
    with running(tmp_path, "HealthApp", *sets) as (proc, port):

        def all_three() -> dict[str, str] | None:
            answer = readyz(port)
            if answer is None or answer[0] != 503 or answer[1].get("status") != "unhealthy":
                return None
            failing: dict[str, str] = answer[1]["unhealthy"]
            return failing if set(failing) == {"hung", "turns_false", "says_down"} else None

        failing = eventually(all_three, "/readyz 503 naming the three services", proc=proc)
        assert get(port, "/livez")[:1] == (200,)
        assert "did not answer within 0.5 s" in failing["hung"], failing
        assert failing["turns_false"] == "health() returned False", failing
        assert "health() returned 'down', not a bool" in failing["says_down"], failing
        # rounds go on beside the hung check: 8 calls of the False one (the hung one began once)
        eventually(
            lambda: "turns-false check 8" in output(tmp_path, "stdout") or None,
            "eight rounds",
            proc=proc,
        )
        status, body = eventually(lambda: readyz(port), "/readyz answers", proc=proc)
        assert status == 503 and set(body["unhealthy"]) == set(failing), body
        assert get(port, "/livez")[:1] == (200,)
        code = stop(proc)
    stdout, stderr = output(tmp_path, "stdout"), output(tmp_path, "stderr")
    assert stdout.count("hung check began") == 1, stdout
    warned = [
        line
        for line in stderr.splitlines()
        if "health() returned 'down', not a bool" in line and "is unhealthy:" not in line
    ]
    assert len(warned) == 1, stderr[-3000:]
    assert "service 'says_down'" in warned[0]
    assert code == 0, stderr[-3000:]


def test_readyz_names_a_service_waiting_for_its_restart(tmp_path: Path) -> None:
    """A ``run()`` that raises, ``restart = "on-failure"`` and a 5 s backoff: while it waits,
    ``/readyz`` is 503 ``{"status": "restarting", "restarting": ["crashes"]}`` and ``/livez`` 200."""
    sets = ('services.crashes.restart="on-failure"', "services.crashes.restart_backoff=5")
    with running(tmp_path, "RestartApp", *sets) as (proc, port):

        def not_ready() -> tuple[int, dict[str, Any]] | None:
            answer = readyz(port)
            return answer if answer is not None and answer[0] != 200 else None

        status, body = eventually(not_ready, "/readyz not 200", proc=proc)
        assert (status, body) == (503, {"status": "restarting", "restarting": ["crashes"]})
        assert get(port, "/livez")[:1] == (200,)
        code = stop(proc)
    stderr = output(tmp_path, "stderr")
    assert "the queue went away" in stderr
    assert code == 0, stderr[-3000:]


def test_readyz_says_shutting_down_during_the_shutdown_delay(tmp_path: Path) -> None:
    """SIGTERM with ``lifecycle.shutdown_delay`` 3: a fresh connection to ``/readyz`` gets 503
    ``{"status": "shutting down"}`` (with ``Connection: close``) while the app still serves
    ``/hello``; then the process exits 0."""
    with running(tmp_path, "PlainApp", "lifecycle.shutdown_delay=3") as (proc, port):
        assert readyz(port) == (200, {"status": "ready"})
        proc.send_signal(signal.SIGTERM)

        def not_ready() -> tuple[int, str, str] | None:
            answer = get(port, "/readyz")
            return answer if answer[0] != 200 else None

        status, connection, body = eventually(not_ready, "/readyz not 200", proc=proc)
        assert (status, json.loads(body)) == (503, {"status": "shutting down"}), body
        assert connection.lower() == "close"  # once: a repeated header reads "close, close"
        assert get(port, "/hello")[:2] == (200, "close")  # the delay still serves, and says so
        code = proc.wait(timeout=30)
    stderr = output(tmp_path, "stderr")
    assert "not ready; serving for 3 s more" in stderr, stderr[-3000:]
    assert code == 0, stderr[-3000:]


def test_probes_answer_while_requests_in_flight_fill_limit_concurrency(tmp_path: Path) -> None:
    """``http.limit_concurrency`` 2 and two requests in flight (each on its connection, waiting in
    the app): on a third connection ``/livez`` and ``/readyz`` answer 200 while ``/hello`` gets
    503; once released, both requests in flight are answered 200."""
    with running(tmp_path, "PlainApp", "http.limit_concurrency=2") as (proc, port):
        answers: list[tuple[int, str, str]] = []
        slow = [
            threading.Thread(target=lambda: answers.append(get(port, "/slow")), daemon=True)
            for _ in range(2)
        ]
        for thread in slow:
            thread.start()
        eventually(
            lambda: output(tmp_path, "stdout").count("slow began") == 2 or None,
            "two requests in flight",
            proc=proc,
        )
        assert get(port, "/livez")[:1] == (200,)
        assert readyz(port) == (200, {"status": "ready"})
        status, _, body = get(port, "/hello")
        assert (status, body) == (503, "Service Unavailable")
        (tmp_path / "release").touch()
        for thread in slow:
            thread.join(timeout=20)
        assert [a[0] for a in answers] == [200, 200], answers
        eventually(  # below the limit again, once the server saw the two connections close
            lambda: get(port, "/hello")[0] == 200 or None, "/hello 200 again", proc=proc
        )
        code = stop(proc)
    assert code == 0, output(tmp_path, "stderr")[-3000:]
