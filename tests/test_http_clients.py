"""The HTTP service with real clients and real signals: keep-alive loops, websockets, SSE, a client
that never reads. Each test runs `framework run` in a subprocess on a loopback port, sends it SIGTERM
and looks at what the clients saw; every wait is bounded.
"""

from __future__ import annotations

import http.client
import signal
import socket
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from tests._process import free_port

from ._http_helpers import sigterm_under_keep_alive, start_server

pytestmark = pytest.mark.slow


def _stopped(proc_dir: Path) -> tuple[str, str]:
    return (proc_dir / "stdout.txt").read_text(), (proc_dir / "stderr.txt").read_text()


@pytest.mark.parametrize(
    ("loop", "protocol", "delay"),
    [
        ("asyncio", "h11", 0),
        ("auto", "auto", 0),  # uvloop and httptools, installed with the dev extra
        ("asyncio", "h11", 1),
        ("auto", "auto", 1),
    ],
)
def test_keep_alive_clients_lose_no_request_at_sigterm(
    tmp_path: Path, loop: str, protocol: str, delay: int
) -> None:
    """20 `http.client` keep-alive loops, SIGTERM: every request written on a kept-alive
    connection is answered 200 (a refused connect once the listener closed is not a loss), the
    exit is 0, and with a shutdown delay the responses during it carry `Connection: close`.
    `auto` picks uvloop and httptools."""
    port = free_port()
    sets = (f"http.loop={loop}", f"http.http={protocol}", f"lifecycle.shutdown_delay={delay}")
    proc = start_server(tmp_path, port, *sets)
    try:
        tally = sigterm_under_keep_alive(proc, port)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    _, stderr = _stopped(tmp_path)
    assert proc.returncode == 0, stderr[-3000:]
    served_by = "loop=asyncio http=h11" if loop == "asyncio" else "loop=uvloop http=httptools"
    assert served_by in stderr
    shutdown = [line[:120] for line in stderr.splitlines() if "framework." in line][-8:]
    on_reused = sum(n for why, n in tally.errors.items() if "reused" in why)
    # the keep-alive bug: a request written on a kept-alive connection and never answered. A
    # request that could not be written at all (a client thread starved past the lame-duck window
    # on a loaded machine finds its idle connection closed) was never sent: the client retries it.
    assert on_reused == 0, (tally, shutdown)
    # a connect that completes in the instant the listening socket closes is reset by the kernel
    # (the handshake was not finished when it closed): rare (about one round in fifty), never two
    assert tally.lost <= 1, (tally, shutdown)
    assert tally.answered == tally.statuses.get(200, 0) == tally.written - tally.lost > 0
    assert tally.refused == 20  # each client ends on a refused connect: the listener closed
    assert tally.closes >= 20  # each keep-alive connection was told to close
    if delay:
        assert tally.closes > 100, tally  # the delay served its keep-alive clients one by one


def test_a_websocket_handler_watching_the_notice_says_goodbye(tmp_path: Path) -> None:
    """A handler awaiting the shutdown notice sends its goodbye and closes with 1001: the client
    reads both, and the process exits 0."""
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        with connect(f"ws://127.0.0.1:{port}/polite", open_timeout=5, close_timeout=5) as ws:
            assert ws.recv(timeout=5) == "hello"
            proc.send_signal(signal.SIGTERM)
            assert ws.recv(timeout=5) == "goodbye"
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=5)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout, stderr = _stopped(tmp_path)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001
    assert code == 0, stderr[-3000:]
    assert "polite handler closed" in stdout


def test_a_websocket_handler_ignoring_the_notice_gets_a_proper_close(tmp_path: Path) -> None:
    """A handler that only waits in receive(): once the lame-duck window is over the client gets a
    close frame 1012 (never an abrupt 1006) and the handler's receive() returns
    websocket.disconnect with 1012; the process exits 0."""
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        with connect(f"ws://127.0.0.1:{port}/deaf", open_timeout=5, close_timeout=5) as ws:
            assert ws.recv(timeout=5) == "hello"
            proc.send_signal(signal.SIGTERM)
            with pytest.raises(ConnectionClosed) as closed:
                ws.recv(timeout=10)
        code = proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout, stderr = _stopped(tmp_path)
    assert closed.value.rcvd is not None and closed.value.rcvd.code in (1001, 1012)
    assert code == 0, stderr[-3000:]
    assert "deaf handler got websocket.disconnect 1012" in stdout


def test_an_sse_stream_watching_the_notice_ends_complete(tmp_path: Path) -> None:
    """An SSE stream that stops when the notice is set ends with its goodbye event and a
    well-formed chunked end (no IncompleteRead); the process exits 0."""
    port = free_port()
    proc = start_server(tmp_path, port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/events")
        response = conn.getresponse()
        assert response.status == 200
        assert response.readline().startswith(b"data: tick 0")
        proc.send_signal(signal.SIGTERM)
        rest = response.read()  # raises IncompleteRead if the chunked body is cut
        code = proc.wait(timeout=20)
    finally:
        conn.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout, stderr = _stopped(tmp_path)
    assert rest.endswith(b"data: goodbye\n\n")
    assert response.getheader("connection", "").lower() != "keep-alive"
    assert code == 0, stderr[-3000:]
    assert "stream ended" in stdout
    assert "without completing response" not in stderr


def test_a_client_that_never_reads_does_not_starve_the_next_stop(tmp_path: Path) -> None:
    """A client asks for 50 MB and never reads. The HTTP stop (bound 5 s) ends within its bound:
    the connection is aborted there (and logged) rather than held until the bound passes, so
    the store it depends on still gets the 0.6 s its stop needs out of the 5.5 s shutdown; exit 0."""
    port = free_port()
    sets = ("services.http.stop_timeout=5", "lifecycle.shutdown_timeout=5.5")
    proc = start_server(tmp_path, port, *sets, env={"STORE_STOP_SECONDS": "0.6"})
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(12) == b"HTTP/1.1 200"
        time.sleep(0.3)  # the server fills the socket buffers and waits
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=20)
        took = time.monotonic() - began
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout, stderr = _stopped(tmp_path)
    assert "did not stop within" not in stderr, stderr[-3000:]
    assert "store stopped" in stdout, stderr[-3000:]
    assert "1 connection(s) aborted at the stop bound" in stderr
    assert code == 0, stderr[-3000:]
    assert took < 5.5 + 2.0  # the shutdown bound, generous slack


@pytest.mark.slow
def test_a_websocket_over_limit_concurrency_is_refused_with_503(tmp_path: Path) -> None:
    """``http.limit_concurrency = 2`` taken by two idle keep-alive connections: a websocket
    handshake is refused with 503 "Service Unavailable" (not the 403 a close before accept gives);
    once a connection is freed, the websocket is served."""
    from websockets.exceptions import InvalidStatus

    port = free_port()
    proc = start_server(tmp_path, port, "http.limit_concurrency=2")
    held = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(2)]
    try:
        for conn in held:
            conn.request("GET", "/hello")
            assert conn.getresponse().read() == b"hello"
        with pytest.raises(InvalidStatus) as refused:
            connect(f"ws://127.0.0.1:{port}/polite", open_timeout=5, close_timeout=5)
        assert refused.value.response.status_code == 503
        assert refused.value.response.body == b"Service Unavailable"
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the server notices the closed connection on its next read
            try:
                with connect(f"ws://127.0.0.1:{port}/polite", open_timeout=5) as ws:
                    assert ws.recv(timeout=5) == "hello"
                break
            except InvalidStatus:
                assert time.monotonic() < deadline, "the freed connection was never counted"
                time.sleep(0.05)
    finally:
        for conn in held:
            conn.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


@pytest.mark.slow
def test_probes_answer_past_limit_concurrency(tmp_path: Path) -> None:
    """``http.limit_concurrency = 4`` and four idle keep-alive connections open: /livez and
    /readyz still answer 200 on a fifth connection (the kubelet's), an ordinary request there
    gets 503 "Service Unavailable", and the four connections are still served."""
    port = free_port()
    proc = start_server(tmp_path, port, "http.limit_concurrency=4")
    held = [http.client.HTTPConnection("127.0.0.1", port, timeout=5) for _ in range(4)]
    try:
        for conn in held:  # keep-alive: each stays open after its response
            conn.request("GET", "/hello")
            assert conn.getresponse().read() == b"hello"
        for path in ("/livez", "/readyz"):
            probe = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            probe.request("GET", path)
            assert probe.getresponse().status == 200, path
            probe.close()
        extra = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        extra.request("GET", "/hello")
        refused = extra.getresponse()
        assert (refused.status, refused.read()) == (503, b"Service Unavailable")
        extra.close()
        held[0].request("GET", "/hello")
        assert held[0].getresponse().status == 200
    finally:
        for conn in held:
            conn.close()
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
