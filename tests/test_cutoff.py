"""A 503 "cut off" means the request's work did not happen: a synchronous endpoint (a worker
thread) still inside its transaction at the drain bound gets 503, and its transaction is rolled
back, not committed, so a client that retries the 503 writes once. Real process, real SQLite
file, real SIGTERM, a raw socket client (every header seen)."""

from __future__ import annotations

import signal
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from tests._process import finish, free_port, spawn, with_sets


@pytest.mark.slow
def test_a_cut_off_synchronous_request_does_not_commit(tmp_path: Path) -> None:
    """The client gets 503 with one ``Connection: close`` header; the row is not in the table
    after the process exited; the exit code says a stop failed (requests were cut off)."""
    port, db = free_port(), tmp_path / "orders.sqlite"
    proc = spawn(
        tmp_path,
        "run",
        "tests.cutoff_apps:App",
        *with_sets(
            f"http.port={port}", f"database.url='sqlite:///{db}'", "services.http.stop_timeout=1"
        ),
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "never listened"
            time.sleep(0.05)
    with sock:
        sock.sendall(b"POST /order?seconds=3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        time.sleep(0.5)  # the handler is inside its transaction now
        proc.send_signal(signal.SIGTERM)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"\n"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    code, err = finish(proc, timeout=30)
    head = answer.split(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 503"), answer
    assert head.count(b"connection: close") == 1, answer
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    assert code == 1, err
    assert "cut off" in err
