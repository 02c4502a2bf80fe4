"""The supervisor with real worker processes, real signals and real sockets on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests._process import framework_env, free_port

pytestmark = pytest.mark.slow

TIMEOUT = 30.0

# The app each worker runs: an HttpService whose start() serves plain HTTP (the worker's pid as
# the body) on the socket the supervisor passed (or one of its own). The runner tells the
# supervisor it is ready once every service has started.
APP = textwrap.dedent(
    """
    import asyncio, os, signal, socket
    import anyio
    from dependency_injector import containers, providers
    from framework import Application, Settings
    from framework.services._http import HttpService
    from framework._runtime.systemd import take_inherited_socket

    BROKEN = False
    if BROKEN:
        raise RuntimeError("this version of the app is broken")
    SLOW = False
    if SLOW:  # an import that takes long (a big dependency tree on a loaded machine)
        import time
        os.write(2, f"worker {os.getpid()} importing slowly\\n".encode())
        time.sleep(30)

    DELAY = float(os.environ.get("APP_TEST_DELAY", "0.02"))


    def _note(number, frame):
        os.write(2, f"worker {os.getpid()} got {signal.Signals(number).name}\\n".encode())


    signal.signal(signal.SIGUSR1, _note)  # the runner's own handling is not needed here
    signal.signal(signal.SIGUSR2, _note)


    async def asgi(scope, receive, send):
        pass


    class PlainHttp(HttpService):
        async def start(self):
            if os.environ.get("APP_TEST_FAIL_START"):
                raise RuntimeError("cannot start")
            s = self.settings
            sock = take_inherited_socket(s.host, s.port, self.name)
            if sock is None:
                sock = socket.create_server((s.host, s.port))
            self._handlers = set()
            self._server = await asyncio.start_server(self._handle, sock=sock)

        async def _handle(self, reader, writer):
            task = asyncio.current_task()
            self._handlers.add(task)
            try:
                await reader.readuntil(b"\\r\\n\\r\\n")
                await asyncio.sleep(DELAY)
                body = str(os.getpid()).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\\r\\nConnection: close\\r\\nContent-Length: %d\\r\\n\\r\\n%s"
                    % (len(body), body)
                )
                await writer.drain()
            except Exception:
                pass
            finally:
                writer.close()
                self._handlers.discard(task)

        async def run(self):
            await anyio.sleep_forever()

        async def stop(self):
            self._server.close()
            if os.environ.get("APP_TEST_HANG_STOP"):
                await anyio.sleep(60)
            await anyio.sleep(0.05)  # handlers of connections accepted just now get to run
            while self._handlers:
                await anyio.sleep(0.01)


    class Container(containers.DeclarativeContainer):
        settings = providers.Dependency(instance_of=Settings)
        http = providers.Singleton(PlainHttp, app=asgi, settings=settings.provided.http)


    class App(Application):
        container_class = Container  # the runner tells the supervisor READY=1 and STOPPING=1
    """
)

# What `framework run TARGET --workers N --set ...` will run once the CLI has the option.
LAUNCH = textwrap.dedent(
    """
    import sys
    from framework._cli.commands import load_target
    from framework._config.load import parse_override
    from framework._process.supervisor import supervise
    from framework._process.workers import worker_command

    target, workers, *sets = sys.argv[1:]
    options = [arg for s in sets for arg in ("--set", s)]
    app = load_target(target)(overrides=dict(parse_override(s) for s in sets))
    sys.exit(supervise(app, worker_command(target, options), workers=int(workers)))
    """
)


class Supervised:
    """A supervisor process running the test app; its log lines collected as they come."""

    def __init__(self, tmp_path: Path, workers: int, *sets: str, env: dict[str, str]) -> None:
        (tmp_path / "sup_app.py").write_text(APP)
        self.app = tmp_path / "sup_app.py"
        self.port = free_port()
        args = ["sup_app:App", str(workers), f"http.port={self.port}", *sets]
        self.proc = subprocess.Popen(
            [sys.executable, "-c", LAUNCH, *args],
            cwd=tmp_path,
            env=framework_env(env),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, text: str, count: int = 1, timeout: float = TIMEOUT) -> list[str]:
        """Until ``count`` log lines contain ``text`` (bounded); those lines."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in list(self.lines) if text in line]
            if len(found) >= count:
                return found
            if self.proc.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.02)
        log = "\n".join(self.lines)
        raise AssertionError(f"{count} x {text!r} not logged within {timeout} s:\n{log}")

    def started_pids(self) -> list[int]:
        return [int(m[1]) for m in (re.search(r"worker (\d+) started", x) for x in self.lines) if m]

    def ready_pids(self) -> list[int]:
        found = (re.search(r"worker (\d+) \(slot \d+\) ready", line) for line in list(self.lines))
        return [int(m[1]) for m in found if m]

    def get(self) -> int:
        """One request on a fresh connection; the pid that answered."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := conn.recv(4096):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200 OK"), data
        return int(body)

    def send(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def finish(self, timeout: float = TIMEOUT) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code

    def close(self) -> None:
        """Reap everything, whatever happened."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.started_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reader.join(timeout=5)
        if self.proc.stderr is not None:
            self.proc.stderr.close()


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Any]:
    started: list[Supervised] = []

    def start(workers: int, *sets: str, **env: str) -> Supervised:
        sup = Supervised(tmp_path, workers, *sets, env=env)
        started.append(sup)
        return sup

    yield start
    for sup in started:
        sup.close()


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Clients:
    """Threads requesting on fresh connections (no keep-alive) until stopped; every outcome kept."""

    def __init__(self, sup: Supervised, threads: int = 3) -> None:
        self.sup = sup
        self.pids: list[int] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True) for _ in range(threads)]
        for thread in self._threads:
            thread.start()

    def _loop(self) -> None:
        deadline = time.monotonic() + 120
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                self.pids.append(self.sup.get())
            except Exception as exc:
                self.failures.append(f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def test_workers_serve_on_one_port_and_sigterm_exits_0_leaving_no_worker(supervised: Any) -> None:
    """--workers 2: both pids answer on the one port; SIGTERM stops both, exit 0, none left."""
    sup = supervised(2)
    sup.wait_line("2 worker(s) ready")
    workers = set(sup.ready_pids())
    assert len(workers) == 2 and sup.proc.pid not in workers
    clients = Clients(sup, threads=4)
    deadline = time.monotonic() + TIMEOUT
    while set(clients.pids) != workers and time.monotonic() < deadline:
        time.sleep(0.05)
    clients.stop()
    assert set(clients.pids) == workers and not clients.failures
    sup.send(signal.SIGTERM)
    assert sup.finish() == 0, "\n".join(sup.lines)
    assert len([x for x in sup.lines if "exited with code 0" in x]) == 2
    assert all(gone(pid) for pid in workers)
    assert "supervisor: exit code 0" in sup.lines[-1]
    assert all(f"pid={sup.proc.pid}" in x for x in sup.lines if "framework.supervisor" in x)


def test_a_killed_worker_is_replaced_after_a_backoff(supervised: Any) -> None:
    """SIGKILL to a worker: its signal is logged, a new one starts after the backoff and serves."""
    sup = supervised(2, "process.restart_backoff=0.2")
    sup.wait_line("2 worker(s) ready")
    victim = sup.ready_pids()[0]
    os.kill(victim, signal.SIGKILL)
    line = sup.wait_line(f"worker {victim} ")[-1]
    sup.wait_line("was killed by SIGKILL unexpectedly; replacing it in 0.2 s")
    sup.wait_line("ready in", count=3)
    assert line
    replacement = sup.ready_pids()[-1]
    assert replacement != victim and not gone(replacement)
    sup.send(signal.SIGTERM)
    assert sup.finish() == 0, "\n".join(sup.lines)


@pytest.mark.parametrize("workers", [1, 2])
def test_sighup_rolls_every_worker_without_a_failed_request(supervised: Any, workers: int) -> None:
    """SIGHUP: each worker is replaced by a ready new one; fresh-connection clients see 0 failures.

    The supervisor tells its own NOTIFY_SOCKET READY=1, then RELOADING=1 and READY=1 around the
    restart, and STOPPING=1 at the shutdown.
    """
    name = f"@framework-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as notify:
        notify.bind(b"\0" + name[1:].encode())
        notify.settimeout(TIMEOUT)
        sup = supervised(workers, NOTIFY_SOCKET=name)
        sup.wait_line(f"{workers} worker(s) ready")
        assert notify.recv(4096).decode().splitlines()[0] == "READY=1"
        old = set(sup.ready_pids())
        clients = Clients(sup)
        time.sleep(0.3)
        sup.send(signal.SIGHUP)
        sup.wait_line(f"rolling restart complete: {workers} worker(s) replaced")
        time.sleep(0.3)
        clients.stop()
        new = set(sup.ready_pids()) - old
        assert len(new) == workers and all(gone(pid) for pid in old)
        assert not clients.failures, clients.failures[:5]
        assert len(clients.pids) > 20 and set(clients.pids[-10:]) <= new
        assert notify.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert notify.recv(4096).decode().splitlines()[0] == "READY=1"
        sup.send(signal.SIGTERM)
        assert sup.finish() == 0, "\n".join(sup.lines)
        assert notify.recv(4096).decode().splitlines()[0] == "STOPPING=1"


def test_a_broken_new_version_leaves_the_old_workers_serving(supervised: Any) -> None:
    """The app module raises on import before SIGHUP: the new worker fails, the old ones serve."""
    sup = supervised(2)
    sup.wait_line("2 worker(s) ready")
    old = set(sup.ready_pids())
    sup.app.write_text(sup.app.read_text().replace("BROKEN = False", "BROKEN = True"))
    sup.send(signal.SIGHUP)
    line = sup.wait_line("rolling restart stopped")[0]
    assert "exited with code 78" in line and "2 old worker(s) keep serving" in line
    assert any("this version of the app is broken" in x for x in sup.lines)
    assert {sup.get() for _ in range(10)} <= old
    assert all(not gone(pid) for pid in old)
    sup.send(signal.SIGTERM)
    assert sup.finish() == 0, "\n".join(sup.lines)


def test_sigterm_while_a_new_worker_is_still_importing_is_a_clean_stop(supervised: Any) -> None:
    """SIGTERM in the middle of a rolling restart, the new worker still importing: it ends with
    exit 0 (not by the signal), and the supervisor exits 0 after an otherwise clean stop."""
    sup = supervised(1)
    sup.wait_line("1 worker(s) ready")
    sup.app.write_text(sup.app.read_text().replace("SLOW = False", "SLOW = True"))
    sup.send(signal.SIGHUP)
    sup.wait_line("importing slowly")
    sup.send(signal.SIGTERM)
    assert sup.finish() == 0, "\n".join(sup.lines)
    assert not any(
        "signal" in line and "SIGTERM" in line and "killed" in line for line in sup.lines
    )


def test_a_second_signal_forces_the_workers_and_exits_130(supervised: Any) -> None:
    """A stop that hangs: the second SIGTERM is forwarded, workers force, the supervisor exits 130."""
    sup = supervised(
        2,
        "lifecycle.shutdown_timeout=30",
        "services.http.stop_timeout=30",
        APP_TEST_HANG_STOP="1",
    )
    sup.wait_line("2 worker(s) ready")
    sup.send(signal.SIGTERM)
    sup.wait_line("stopping 2 worker(s)")
    time.sleep(0.3)
    second = time.monotonic()
    sup.send(signal.SIGTERM)
    assert sup.finish() == 130, "\n".join(sup.lines)
    assert time.monotonic() - second < 3.0
    assert any("forcing the shutdown" in x for x in sup.lines)


def test_workers_that_cannot_start_end_the_supervisor_with_exit_1(supervised: Any) -> None:
    """A worker whose startup fails: the others are stopped and the supervisor exits 1."""
    sup = supervised(2, APP_TEST_FAIL_START="1")
    assert sup.finish() == 1, "\n".join(sup.lines)
    assert any("before it was ready" in x for x in sup.lines)
    assert all(gone(pid) for pid in sup.started_pids())


def test_an_address_in_use_is_a_clear_error(supervised: Any) -> None:
    """The HTTP port is taken: one message naming the service and the address, exit 1, no worker."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        sup = supervised(2, f"http.port={taken.getsockname()[1]}")
        assert sup.finish() == 1
    text = "\n".join(sup.lines)
    assert "service 'http': cannot listen on 127.0.0.1:" in text and "Traceback" not in text
    assert not sup.started_pids()


def test_the_supervisor_never_outlives_the_shutdown_bound_plus_2_s(supervised: Any) -> None:
    """Workers whose stop hangs: past lifecycle.shutdown_timeout the rest is killed; exit 1 in time."""
    sup = supervised(
        2, "lifecycle.shutdown_timeout=1", "services.http.stop_timeout=30", APP_TEST_HANG_STOP="1"
    )
    sup.wait_line("2 worker(s) ready")
    first = time.monotonic()
    sup.send(signal.SIGTERM)
    assert sup.finish() == 1, "\n".join(sup.lines)
    assert time.monotonic() - first < 1 + 2 + 0.5
    assert all(gone(pid) for pid in sup.started_pids())


def test_sigusr1_and_sigusr2_are_passed_on_and_stop_nothing(supervised: Any) -> None:
    """SIGUSR1 (reopen logs) and SIGUSR2 (status) reach the workers; nothing stops."""
    sup = supervised(1)
    sup.wait_line("1 worker(s) ready")
    worker = sup.ready_pids()[0]
    sup.send(signal.SIGUSR1)
    sup.wait_line(f"worker {worker} got SIGUSR1")
    sup.send(signal.SIGUSR2)
    sup.wait_line(f"supervisor status: worker {worker} (slot 1) ready")
    sup.wait_line("received SIGUSR2: passed on to 1 worker(s)")
    sup.wait_line(f"worker {worker} got SIGUSR2")
    assert sup.get() == worker
    sup.send(signal.SIGTERM)
    assert sup.finish() == 0, "\n".join(sup.lines)


def test_a_new_worker_not_ready_in_time_is_killed_and_the_old_ones_keep_serving(
    supervised: Any,
) -> None:
    """A new version that never reports ready: killed after process.ready_timeout; old ones serve."""
    sup = supervised(1, "process.ready_timeout=6")  # a worker may take 2 s to import under load
    sup.wait_line("1 worker(s) ready")
    old = sup.ready_pids()[0]
    never_ready = "        await anyio.sleep(3600)  # this version never becomes ready\n"
    start = "    async def start(self):\n"
    sup.app.write_text(sup.app.read_text().replace(start, start + never_ready, 1))
    sup.send(signal.SIGHUP)
    line = sup.wait_line("rolling restart stopped")[0]
    assert "was not ready within 6 s (process.ready_timeout)" in line
    new = sup.started_pids()[-1]
    assert new != old and gone(new) and sup.get() == old
    sup.send(signal.SIGTERM)
    assert sup.finish() == 0, "\n".join(sup.lines)


def test_workers_wanted_is_zero_inside_a_worker(monkeypatch: pytest.MonkeyPatch) -> None:
    """--workers wins over process.workers; a worker never supervises in turn."""
    from dependency_injector import containers

    from framework import Application
    from framework._process.supervisor import workers_wanted

    class App(Application):
        container_class = containers.DeclarativeContainer

    app = App(overrides={"process.workers": 3})
    monkeypatch.delenv("FRAMEWORK_WORKER", raising=False)
    assert workers_wanted(app) == 3 and workers_wanted(app, 2) == 2
    monkeypatch.setenv("FRAMEWORK_WORKER", "1")
    assert workers_wanted(app, 2) == 0
