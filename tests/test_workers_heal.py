"""Workers that heal: recycled by requests and memory, hung ones dumped and replaced, forced exits
explained. Real supervisor and worker processes, the real HttpService, real signals, 127.0.0.1."""

from __future__ import annotations

import contextlib
import fcntl
import http.client
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import pytest

from framework._process.heartbeat import STACKS_WAIT
from tests._http_helpers import Tally, keep_alive_client
from tests._process import framework_env, free_port, with_sets

pytestmark = pytest.mark.slow

TIMEOUT = 90.0

APP = """
import os
import time

from dependency_injector import containers, providers
from loguru import logger
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from framework import Application, Service, Settings
from framework.services import HttpService

_kept = []


async def hello(request):
    return PlainTextResponse("hello")


async def hang_forever(request):  # a blocking call in an async endpoint: the loop stops
    os.write(2, f"worker {os.getpid()} hangs now\\n".encode())
    time.sleep(3600)
    return PlainTextResponse("never")


async def grow(request):  # a leak: 10 MiB more resident memory per request; answers the RSS
    _kept.append(b"x" * (10 * 1024 * 1024))
    with open("/proc/self/statm", "rb") as statm:
        rss = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    return PlainTextResponse(str(rss))


api = Starlette(routes=[Route("/hello", hello), Route("/hang", hang_forever), Route("/grow", grow)])


class StuckStop(Service):
    async def stop(self):
        if os.environ.get("HEAL_STUCK_LOG"):  # more than a log that takes nothing more can hold
            os.write(2, b"stop logs now\\n")
            for number in range(20000):
                logger.info(f"line {number} of a log that nobody reads")
        if os.environ.get("HEAL_STUCK_STOP"):
            os.write(2, b"stop is stuck now\\n")
            time.sleep(3600)  # a stop that blocks the event loop


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    stuck = providers.Singleton(StuckStop)
    http = providers.Singleton(HttpService, app=providers.Object(api), settings=settings.provided.http)


class App(Application):
    container_class = Container
"""


class Run:
    """`framework run heal_app:App` in the background, its stderr in a file."""

    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        (tmp_path / "heal_app.py").write_text(APP)
        self.port = free_port()
        self.log_path = tmp_path / "stderr.txt"
        sets = with_sets(f"http.port={self.port}", "lifecycle.shutdown_timeout=5", *args)
        with self.log_path.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "framework", "run", "heal_app:App", *sets],
                cwd=tmp_path,
                env=framework_env(env),
                stdout=subprocess.DEVNULL,
                stderr=err,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_logged(self, text: str, count: int = 1, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            if self.log().count(text) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{count} x {text!r} not logged:\n{self.log()[-5000:]}")

    def get(self, path: str) -> tuple[int, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def wait_serving(self) -> None:
        """Until GET /hello answers 200 (connection errors while starting retried; bounded)."""
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            try:
                if self.get("/hello")[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(TIMEOUT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


class Start(Protocol):
    """The `run` fixture: ``run(*sets, env=...)`` starts a `Run` in the test's directory."""

    def __call__(self, *args: str, env: dict[str, str] | None = None) -> Run: ...


@pytest.fixture
def run(tmp_path: Path) -> Iterator[Start]:
    runs: list[Run] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Run:
        runs.append(Run(tmp_path, *args, env=env))
        return runs[-1]

    yield start
    for item in runs:
        item.close()


def test_max_requests_recycles_workers_under_keep_alive_load_without_a_failed_request(
    run: Start,
) -> None:
    """2 workers, max_requests 50 + jitter 10, 4 keep-alive clients looping on /hello until at
    least 600 requests and 3 replacements: each replacement is logged with its reason, the final
    line counts them, and no request fails (the successor is ready before the old one drains)."""
    app = run("process.workers=2", "process.max_requests=50", "process.max_requests_jitter=10")
    app.wait_logged("2 worker(s) ready")
    stop = threading.Event()
    tallies = [Tally() for _ in range(4)]

    def client(tally: Tally) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not stop.is_set() and time.monotonic() < deadline and tally.written < 20_000:
            keep_alive_client(app.port, min(deadline, time.monotonic() + 0.5), tally)

    threads = [threading.Thread(target=client, args=(t,), daemon=True) for t in tallies]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        answered = sum(t.answered for t in tallies)
        if answered >= 600 and app.log().count("(reason: max_requests;") >= 3:
            break
        time.sleep(0.1)
    stop.set()
    for thread in threads:
        thread.join(TIMEOUT)
    assert app.stop() == 0, app.log()[-4000:]
    log = app.log()
    total = Tally()
    for tally in tallies:
        total.add(tally)
    replaced = log.count("(reason: max_requests;")
    assert replaced >= 3, log[-4000:]
    assert total.answered >= 600 and total.lost == 0, total
    assert set(total.statuses) == {200}, total
    assert "unexpectedly" not in log
    counted = re.search(r"replacements by reason: max_requests (\d+)", log)
    assert counted is not None and int(counted[1]) == replaced, log[-2000:]


def test_a_hung_worker_has_its_stacks_logged_and_is_replaced_while_the_other_serves(
    run: Start,
) -> None:
    """worker_timeout 3: an endpoint stuck in time.sleep(3600) blocks one worker's loop; within
    8 s the log holds one entry with its pid and a stack naming the endpoint's function, the
    worker is killed and replaced (reason timeout), and /hello answers before, during and after."""
    app = run("process.workers=2", "process.worker_timeout=3", "process.restart_backoff=0.2")
    app.wait_logged("2 worker(s) ready")
    assert app.get("/hello") == (200, b"hello")
    hung = threading.Thread(target=lambda: _swallow(app, "/hang"), daemon=True)
    began = time.monotonic()
    hung.start()
    app.wait_logged("is hung", timeout=20)
    took = time.monotonic() - began
    log = app.log()
    entry = log[log.index("is hung") :]
    pid = re.search(r"worker (\d+) \(slot \d+\) is hung", log)
    assert pid is not None
    assert "in hang_forever" in entry, entry[:3000]
    # within 8 s by the supervisor's clock: the loop stopped after its last beat, and the stacks
    # are waited for at most STACKS_WAIT before the entry is logged
    silent = re.search(r"has not reported for ([\d.]+) s", entry)
    assert silent is not None and float(silent[1]) + STACKS_WAIT < 8, entry[:500]
    assert took < 8 + 4, (
        f"hang noticed after {took:.1f} s"
    )  # by this test's clock; a loaded machine
    for _ in range(5):  # the other worker serves meanwhile
        assert app.get("/hello") == (200, b"hello")
    app.wait_logged("(reason: timeout)")
    app.wait_logged("worker(s) ready", count=1)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not re.search(
        r"ready in [\d.]+ s", log.split("is hung")[1]
    ):
        time.sleep(0.1)
        log = app.log()
    assert re.search(r"ready in [\d.]+ s", log.split("is hung")[1]), log[-3000:]
    for _ in range(5):
        assert app.get("/hello") == (200, b"hello")
    assert app.stop() == 0, app.log()[-4000:]
    assert "replacements by reason: timeout 1" in app.log()


def _swallow(app: Run, path: str) -> None:
    try:
        app.get(path)
    except (OSError, http.client.HTTPException):
        pass  # the hung worker is killed: its connection resets


def test_a_worker_growing_past_max_memory_is_replaced_before_300_mib_without_a_failure(
    run: Start,
) -> None:
    """2 workers leaking 10 MiB per request, max_memory_mib 200, a client pacing 2 requests a
    second: each is replaced the rolling way (reason max_memory) before any answer reports
    300 MiB (the old worker serves until its successor is ready), and every request answered."""
    app = run("process.workers=2", "process.max_memory_mib=200")
    app.wait_logged("2 worker(s) ready")
    rss: list[int] = []
    failures: list[str] = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and app.log().count("(reason: max_memory;") < 2:
        try:
            status, body = app.get("/grow")
            assert status == 200
            rss.append(int(body))
        except (OSError, http.client.HTTPException, AssertionError) as exc:
            failures.append(repr(exc))
        time.sleep(0.5)
    assert app.stop() == 0, app.log()[-4000:]
    assert app.log().count("(reason: max_memory;") >= 2, app.log()[-4000:]
    assert not failures, failures[:5]
    assert max(rss) < 300 * 1024 * 1024, max(rss) / 2**20


def test_a_second_sigterm_during_a_stop_stuck_in_sleep_exits_130_with_its_stack_logged(
    run: Start,
) -> None:
    """One process: a service's stop() blocks the loop in time.sleep; a second SIGTERM ends the
    process with 130, and the log holds the stacks of all threads, naming that stop()."""
    app = run(env={"HEAL_STUCK_STOP": "1"})
    app.wait_serving()
    app.proc.send_signal(signal.SIGTERM)
    app.wait_logged("stop is stuck now")
    app.proc.send_signal(signal.SIGTERM)
    assert app.proc.wait(TIMEOUT) == 130
    log = app.log()
    assert "stacks of all threads of process" in log, log[-3000:]
    stacks = log[log.index("stacks of all threads of process") :]
    assert "in stop" in stacks and "heal_app.py" in stacks, stacks[:3000]


def test_a_stop_stuck_past_the_shutdown_budget_has_its_stack_logged_before_the_forced_exit(
    run: Start,
) -> None:
    """One process, one SIGTERM: a service's stop() blocks the loop in time.sleep; once
    lifecycle.shutdown_timeout (2 s) is spent, the watchdog logs the stacks of all threads, naming
    that stop(), before the final line, and ends the process with exit 1 within the bound."""
    app = run("lifecycle.shutdown_timeout=2", env={"HEAL_STUCK_STOP": "1"})
    app.wait_serving()
    app.proc.send_signal(signal.SIGTERM)
    app.wait_logged("stop is stuck now")
    began = time.monotonic()
    assert app.proc.wait(TIMEOUT) == 1, app.log()[-3000:]
    took = time.monotonic() - began
    assert took < 2 + 2 + 3, f"exited {took:.1f} s after the stop got stuck"  # 3: a loaded machine
    log = app.log()
    header = "stacks of all threads of process"
    assert f"{header} {app.proc.pid} (exiting now: " in log, log[-3000:]
    assert "the shutdown outlived lifecycle.shutdown_timeout" in log
    stacks = log[log.index(header) :]
    assert "in stop" in stacks and "heal_app.py" in stacks
    assert stacks.index("in stop") < stacks.index("exit code 1"), stacks[-3000:]


def test_with_the_log_stuck_the_stacks_before_the_forced_exit_go_to_stderr(
    run: Start, tmp_path: Path
) -> None:
    """The log is a FIFO nobody reads (logging.stderr off): stop() blocks writing to it; once
    lifecycle.shutdown_timeout (2 s) is spent, the watchdog cannot log the stacks, so they go
    straight to stderr (naming that stop), then the final line, and the process exits 1."""
    with stuck_log(run, tmp_path, shutdown_timeout=2) as (app, _reader):
        app.proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert app.proc.wait(TIMEOUT) == 1, app.log()[-3000:]
        took = time.monotonic() - began
    assert took < 2 + 2 + 3, f"exited {took:.1f} s after SIGTERM"  # 3: a loaded machine
    err = app.log()  # stderr: nothing reaches it but what the watchdog writes there itself
    header = f"stacks of all threads of process {app.proc.pid} (exiting now: "
    assert header in err, err[-3000:]
    stacks = err[err.index(header) :]
    assert "in stop" in stacks and "heal_app.py" in stacks, stacks[:3000]
    assert [line for line in err.splitlines() if line.strip()][-1].startswith("exit code 1"), err


def test_a_second_sigterm_with_the_log_stuck_writes_the_stacks_to_stderr_and_exits_130(
    run: Start, tmp_path: Path
) -> None:
    """The log is a FIFO nobody reads (logging.stderr off), stop() blocks writing to it, the
    budget is 30 s: a second SIGTERM cannot log the stacks, so they go straight to stderr (naming
    that stop) and the process exits 130 at once."""
    with stuck_log(run, tmp_path, shutdown_timeout=30) as (app, reader):
        deadline = time.monotonic() + TIMEOUT
        app.proc.send_signal(signal.SIGTERM)
        app.wait_logged("stop logs now")
        while _queued(reader) < 60_000 and time.monotonic() < deadline:  # the FIFO holds 64 KiB
            time.sleep(0.05)
        assert _queued(reader) >= 60_000 and app.proc.poll() is None
        app.proc.send_signal(signal.SIGTERM)
        began = time.monotonic()
        assert app.proc.wait(TIMEOUT) == 130, app.log()[-3000:]
        took = time.monotonic() - began
    assert took < 1 + 3, f"exited {took:.1f} s after the second SIGTERM"  # 3: a loaded machine
    err = app.log()  # stderr: nothing reaches it but what is written there directly
    header = f"stacks of all threads of process {app.proc.pid} (SIGTERM received again"
    assert header in err, err[-3000:]
    stacks = err[err.index(header) :]
    assert "in stop" in stacks and "heal_app.py" in stacks, stacks[:3000]


@contextlib.contextmanager
def stuck_log(run: Start, tmp_path: Path, *, shutdown_timeout: float) -> Iterator[tuple[Run, int]]:
    """The app (a stop() that logs a lot) serving, its log a FIFO that is opened but never read
    (its writes fill it) and stderr off; yields the app and the FIFO's reading end."""
    fifo = tmp_path / "log.fifo"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    try:
        sets = (
            f"lifecycle.shutdown_timeout={shutdown_timeout}",
            "logging.stderr=false",
            f"logging.file='{fifo}'",
        )
        app = run(*sets, env={"HEAL_STUCK_LOG": "1"})
        app.wait_serving()
        yield app, reader
    finally:
        os.close(reader)


def _queued(fd: int) -> int:
    """Bytes waiting to be read on the pipe ``fd``."""
    return int(struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0"))[0])


def test_under_the_systemd_watchdog_the_supervisor_pings_only_while_every_worker_reports(
    run: Start,
) -> None:
    """WATCHDOG_USEC 1 s for the supervisor (a ping every 0.5 s), worker_timeout 0 (the supervisor
    leaves a hung worker to systemd): WATCHDOG=1 arrives while both workers beat; once one
    worker's loop is blocked in time.sleep the pings stop for good while the other worker serves;
    once that worker is killed from outside and replaced (reason exited -9), they come again."""
    name = f"@framework-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(b"\0" + name[1:].encode())
        env = {"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "1000000"}
        sets = ("process.workers=2", "process.worker_timeout=0", "process.restart_backoff=0.2")
        app = run(*sets, env=env)
        assert "READY=1" in _notified(notify, "READY=1", 60.0)
        assert _notified(notify, None, 3.0).count("WATCHDOG=1") >= 2  # one every 0.5 s
        threading.Thread(target=lambda: _swallow(app, "/hang"), daemon=True).start()
        app.wait_logged("hangs now")
        hung = re.search(r"worker (\d+) hangs now", app.log())
        assert hung is not None
        quiet = False  # 3 s without a ping: 6 intervals (the hung worker is late after 1 s)
        deadline = time.monotonic() + 20.0
        while not quiet and time.monotonic() < deadline:
            quiet = "WATCHDOG=1" not in _notified(notify, "WATCHDOG=1", 3.0)
        assert quiet, "WATCHDOG=1 kept coming with a worker hung"
        for _ in range(5):  # the other worker serves meanwhile
            assert app.get("/hello") == (200, b"hello")
        assert "WATCHDOG=1" not in _notified(notify, "WATCHDOG=1", 1.0)
        assert "is hung" not in app.log()  # worker_timeout 0: nothing killed it
        os.kill(int(hung[1]), signal.SIGKILL)
        assert "WATCHDOG=1" in _notified(notify, "WATCHDOG=1", 20.0), app.log()[-3000:]
        app.wait_logged("(reason: exited -9)")
        assert app.stop() == 0, app.log()[-4000:]
        assert "STOPPING=1" in _notified(notify, "STOPPING=1", 10.0)
    assert "replacements by reason: exited -9 1" in app.log(), app.log()[-2000:]


def _notified(sock: socket.socket, wanted: str | None, seconds: float) -> list[str]:
    """The lines sent to ``sock`` within ``seconds``, ending early at the line ``wanted``."""
    lines: list[str] = []
    deadline = time.monotonic() + seconds
    while wanted not in lines and (left := deadline - time.monotonic()) > 0:
        sock.settimeout(left)
        try:
            lines += sock.recv(4096).decode().splitlines()
        except TimeoutError:
            break
    return lines
