"""sd_notify and socket activation, on real datagram sockets and real inherited file descriptors."""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from framework._runtime.systemd import Notifier, watchdog_loop
from tests._process import framework_env

TIMEOUT = 20.0


@pytest.fixture
def receiver() -> Iterator[tuple[socket.socket, str]]:
    """A real datagram socket in the abstract namespace, as systemd's notify socket is."""
    name = f"@framework-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(b"\0" + name[1:].encode())
    sock.settimeout(TIMEOUT)
    try:
        yield sock, name
    finally:
        sock.close()


def receive(sock: socket.socket) -> list[str]:
    return sock.recv(4096).decode().splitlines()


def test_without_notify_socket_everything_is_a_no_op() -> None:
    """No NOTIFY_SOCKET: disabled, no watchdog, every message reports not sent and nothing raises."""
    notifier = Notifier.from_env({})
    assert not notifier.enabled and notifier.watchdog_interval is None
    assert not notifier.ready() and not notifier.stopping() and not notifier.watchdog()
    assert not notifier.reloading() and not notifier.status("x")


def test_messages_reach_a_real_socket_at_a_path(tmp_path: Path) -> None:
    """READY=1, STATUS (one line), STOPPING=1 and RELOADING=1 with MONOTONIC_USEC arrive as sent."""
    path = tmp_path / "n.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(TIMEOUT)
        notifier = Notifier.from_env({"NOTIFY_SOCKET": str(path)})
        assert notifier.ready("serving\non 2 ports")
        assert receive(sock) == ["READY=1", "STATUS=serving on 2 ports"]
        assert notifier.status("draining")
        assert receive(sock) == ["STATUS=draining"]
        assert notifier.stopping()
        assert receive(sock) == ["STOPPING=1"]
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notifier.reloading()
        lines = receive(sock)
        assert lines[0] == "RELOADING=1"
        usec = int(lines[1].removeprefix("MONOTONIC_USEC="))
        assert before <= usec <= before + 60_000_000


def test_abstract_namespace_names_are_supported(receiver: tuple[socket.socket, str]) -> None:
    """A NOTIFY_SOCKET starting with @ is an abstract socket name (systemd's own is one)."""
    sock, name = receiver
    assert Notifier.from_env({"NOTIFY_SOCKET": name}).watchdog()
    assert receive(sock) == ["WATCHDOG=1"]


def test_an_unreachable_socket_never_raises_and_warns_once(tmp_path: Path) -> None:
    """Sending to a socket that is gone returns False; one warning names NOTIFY_SOCKET, not more."""
    from loguru import logger

    lines: list[str] = []
    sink = logger.add(lines.append, level="WARNING", format="{message}")
    try:
        notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
        assert not notifier.ready() and not notifier.stopping()
        bad = Notifier.from_env({"NOTIFY_SOCKET": "relative/path"})
        assert not bad.ready()
    finally:
        logger.remove(sink)
    assert len(lines) == 2 and all("NOTIFY_SOCKET=" in line for line in lines)


def test_watchdog_interval_is_half_of_watchdog_usec_for_this_pid_only() -> None:
    """WATCHDOG_USEC=2 s gives pings every 1 s; a WATCHDOG_PID naming another process: none."""
    env = {"NOTIFY_SOCKET": "@x", "WATCHDOG_USEC": "2000000"}
    assert Notifier.from_env(env).watchdog_interval == 1.0
    mine = {**env, "WATCHDOG_PID": str(os.getpid())}
    assert Notifier.from_env(mine).watchdog_interval == 1.0
    other = {**env, "WATCHDOG_PID": str(os.getpid() + 1)}
    assert Notifier.from_env(other).watchdog_interval is None
    assert Notifier.from_env({"WATCHDOG_USEC": "2000000"}).watchdog_interval is None


@pytest.mark.anyio
async def test_watchdog_loop_pings_from_the_event_loop_and_a_blocked_loop_stops_it(
    receiver: tuple[socket.socket, str],
) -> None:
    """Pings come every half WATCHDOG_USEC; while the loop is blocked in sync code, none is sent."""
    sock, name = receiver
    sock.setblocking(False)
    notifier = Notifier.from_env({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "100000"})
    stamps: list[float] = []

    def drain() -> None:
        while True:
            try:
                data = sock.recv(64)
            except BlockingIOError:
                return
            assert data == b"WATCHDOG=1\n"
            stamps.append(time.monotonic())

    with anyio.fail_after(TIMEOUT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watchdog_loop, notifier)
            await anyio.sleep(0.3)
            drain()
            pinged = len(stamps)
            time.sleep(0.6)  # the event loop is blocked: no ping may be sent meanwhile
            drain()
            assert len(stamps) == pinged
            await anyio.sleep(0.3)
            tg.cancel_scope.cancel()
    drain()
    assert pinged >= 3  # 0.05 s apart over 0.3 s; generous for a noisy machine
    assert len(stamps) > pinged  # the pings resumed with the loop


@pytest.mark.anyio
async def test_watchdog_loop_returns_when_there_is_no_watchdog() -> None:
    """Without WATCHDOG_USEC the task ends at once (it can be started unconditionally)."""
    with anyio.fail_after(1):
        await watchdog_loop(Notifier.from_env({"NOTIFY_SOCKET": "@x"}))


NOTIFYING_CHILD = textwrap.dedent(
    """
    import anyio
    from framework._runtime.systemd import Notifier, watchdog_loop

    async def main():
        notifier = Notifier.from_env()
        notifier.ready()
        with anyio.move_on_after(0.5):
            await watchdog_loop(notifier)
        notifier.stopping()

    anyio.run(main)
    """
)


@pytest.mark.slow
def test_a_child_process_sends_ready_watchdog_and_stopping(
    receiver: tuple[socket.socket, str],
) -> None:
    """A real process given NOTIFY_SOCKET and WATCHDOG_USEC: READY=1, WATCHDOG=1 every ~half, STOPPING=1."""
    sock, name = receiver
    env = framework_env({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "200000"})
    proc = subprocess.Popen([sys.executable, "-c", NOTIFYING_CHILD], env=env)
    try:
        messages: list[tuple[float, str]] = []
        while not messages or messages[-1][1] != "STOPPING=1":
            messages.append((time.monotonic(), sock.recv(64).decode().strip()))
        assert proc.wait(timeout=TIMEOUT) == 0
    finally:
        proc.kill()
        proc.wait()
    kinds = [kind for _, kind in messages]
    assert kinds[0] == "READY=1" and kinds[-1] == "STOPPING=1"
    pings = [at for at, kind in messages if kind == "WATCHDOG=1"]
    assert 2 <= len(pings) <= 8  # every 0.1 s over 0.5 s (fewer when the machine is loaded)
    gaps = sorted(b - a for a, b in itertools.pairwise(pings))
    # the median: never faster than the period (the first ones may queue up); slower only by load
    assert 0.05 < gaps[len(gaps) // 2] < 1.0, gaps


# -- socket activation --------------------------------------------------------------------------

# Puts the socket passed as fd $FD at fd 3 and sets LISTEN_* for its own pid, then execs the
# child: what systemd does for a socket unit.
LAUNCHER = textwrap.dedent(
    """
    import os, sys
    fd = int(os.environ.pop("FD"))
    os.dup2(fd, 3, inheritable=True)
    os.environ.update(LISTEN_FDS="1", LISTEN_PID=os.environ.pop("PID", str(os.getpid())),
                      LISTEN_FDNAMES="web")
    os.execv(sys.executable, [sys.executable, "-c", sys.argv[1]])
    """
)

ACTIVATED_CHILD = textwrap.dedent(
    """
    import os
    from framework._runtime.systemd import inherited_sockets, take_inherited_socket
    port = int(os.environ["PORT"])
    count = len(inherited_sockets())
    left = [k for k in ("LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES") if k in os.environ]
    print("inherited", count, left, flush=True)
    print("wrong", take_inherited_socket("127.0.0.1", port + 1), flush=True)
    sock = take_inherited_socket("127.0.0.1", port)
    print("taken", sock is not None and sock.getsockname()[1] == port, flush=True)
    print("again", take_inherited_socket("127.0.0.1", port), flush=True)
    if sock is not None:
        conn, _ = sock.accept()
        conn.sendall(b"hello from " + str(os.getpid()).encode())
        conn.close()
    """
)


def activate(listener: socket.socket, extra: dict[str, str]) -> subprocess.Popen[str]:
    env = framework_env(
        {"FD": str(listener.fileno()), "PORT": str(listener.getsockname()[1]), **extra}
    )
    return subprocess.Popen(
        [sys.executable, "-c", LAUNCHER, ACTIVATED_CHILD],
        env=env,
        pass_fds=(listener.fileno(),),
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_socket_activation_serves_on_the_inherited_socket_and_unsets_the_variables() -> None:
    """LISTEN_FDS/LISTEN_PID: the child takes the socket matching its address, once; env unset."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        proc = activate(listener, {})
        try:
            port = listener.getsockname()[1]
            with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as client:
                reply = client.recv(64).decode()
            out, _ = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
    assert reply == f"hello from {proc.pid}"
    assert out.splitlines() == ["inherited 1 []", "wrong None", "taken True", "again None"]


@pytest.mark.slow
def test_sockets_for_another_pid_are_ignored() -> None:
    """LISTEN_PID naming another process: nothing is inherited (and the variables are still unset)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        proc = activate(listener, {"PID": "1"})
        try:
            out, _ = proc.communicate(timeout=TIMEOUT)
        finally:
            proc.kill()
            proc.wait()
    assert out.splitlines() == ["inherited 0 []", "wrong None", "taken False", "again None"]
