"""Telemetry flushed last: real `framework run` processes (`tests.telemetry_apps`), a real OTLP/HTTP
receiver on loopback (`tests._otlp`), real requests, real SIGTERM, a real SQLite file."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests._otlp import Receiver
from tests._process import REPO, free_port, spawn, with_sets
from tests.sample_apps import read_journal

pytestmark = pytest.mark.slow

TOKEN = "s3cr3t-t0ken-value"
DB_PASSWORD = "db-pa55word-value"
SERVER, CLIENT = 2, 3  # the protobuf's SpanKind values
REQUESTS = 500


class Drained:
    """The stderr of ``proc``, read as it comes by a thread of its own: a child that writes more
    than a pipe holds (an access log line per request) never blocks on it."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: list[str] = []
        assert proc.stderr is not None
        self._thread = threading.Thread(target=self._read, args=(proc.stderr,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.append(line)

    def finish(self, timeout: float = 30.0) -> tuple[int, str]:
        """Wait for the exit (kill and fail past ``timeout``): the exit code and all of stderr."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._thread.join(timeout=10)
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        err = "".join(self.lines)
        assert code != -signal.SIGKILL, f"no exit within {timeout} s:\n{err}"
        return code, err

    def sigterm(self) -> None:
        self.proc.send_signal(signal.SIGTERM)


def run(tmp_path: Path, endpoint: str, port: int, *sets: str, target: str = "TracedApp") -> Drained:
    """`framework run` of ``tests.telemetry_apps:<target>`` (SQLite), its stderr drained."""
    proc = spawn(
        tmp_path,
        "run",
        f"tests.telemetry_apps:{target}",
        "--report",
        str(tmp_path / "report.json"),
        *with_sets(
            f"telemetry.endpoint='{endpoint}'",
            f"http.port={port}",
            # SQLite has no password: the URI form carries one it ignores, as a server URL would
            f"database.url='sqlite+aiosqlite:///file:{tmp_path}/db.sqlite?uri=true&password={DB_PASSWORD}'",
            f'app.journal="{tmp_path / "journal.txt"}"',
            f"app.token={TOKEN}",
            f"services.{'sentry' if target == 'SentryApp' else 'telemetry'}.stop_timeout=1",
            *sets,
        ),
    )
    return Drained(proc)


def connect_when_ready(port: int, child: Drained) -> http.client.HTTPConnection:
    """A keep-alive connection, once ``/readyz`` answers 200 (bounded: 20 s)."""
    deadline = time.monotonic() + 20
    while True:
        assert child.proc.poll() is None, "".join(child.lines)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("GET", "/readyz")
            answer = connection.getresponse()
            answer.read()
            if answer.status == 200:
                return connection
        except OSError:
            pass
        connection.close()
        assert time.monotonic() < deadline, "never ready"
        time.sleep(0.05)


def get(connection: http.client.HTTPConnection, path: str) -> None:
    connection.request("GET", path)
    answer = connection.getresponse()
    answer.read()
    assert answer.status == 200


def telemetry_stop_seconds(tmp_path: Path) -> float:
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (entry,) = [e for e in report["services"] if e["service"] == "telemetry"]
    assert entry["stop"]["outcome"] == "ok", entry
    return float(entry["stop"]["seconds"])


def warnings_of(err: str) -> list[str]:
    return [line for line in err.splitlines() if "| WARNING " in line or "| ERROR " in line]


def test_every_request_span_is_exported_at_sigterm_with_its_statement_child(
    tmp_path: Path,
) -> None:
    """500 requests on a keep-alive connection (every other one queries the database), then
    SIGTERM right away: 750 spans, more than one batch of the batch processor (512), so part is
    exported while serving and the rest only by the stop's flush (the 5 s schedule has not
    fired). The receiver has 500 server spans, each /query one with its statement span as a
    child; the telemetry stopped after the HTTP server and the database, and no edge to it was
    declared."""
    receiver = Receiver()
    try:
        port = free_port()
        app = run(tmp_path, receiver.url, port)
        connection = connect_when_ready(port, app)
        for i in range(REQUESTS):
            get(connection, "/query" if i % 2 else "/plain")
        connection.close()
        app.sigterm()
        code, err = app.finish()
        assert code == 0, err
        servers = [s for s in receiver.spans if s.kind == SERVER]
        assert len(servers) == REQUESTS, err
        queried = {s.span_id: s for s in servers if s.name == "GET /query"}
        assert len(queried) == REQUESTS // 2
        children = [s for s in receiver.spans if s.parent_span_id in queried]
        assert {s.parent_span_id for s in children} == set(queried)
        assert all(
            s.kind == CLIENT and s.attributes["db.statement"] == "SELECT 1 + ?" for s in children
        )
        assert all(queried[s.parent_span_id].trace_id == s.trace_id for s in children)
        assert receiver.resources[0]["service.name"] == "TracedApp"
        lines = read_journal(tmp_path / "journal.txt")
        assert lines[-2:] == ["Telemetry stopping", "Telemetry stopped"], lines
        assert lines.index("Http stopped") < lines.index("Db stopping"), lines
        assert not warnings_of(err), err
    finally:
        receiver.close()


def test_an_unreachable_endpoint_costs_its_bound_and_one_warning(tmp_path: Path) -> None:
    """Nothing listens at telemetry.endpoint: the app serves, SIGTERM exits 0, the telemetry's
    stop kept its 1 s bound, and the failure is one warning line (none of the SDK's own)."""
    port = free_port()
    app = run(tmp_path, f"http://127.0.0.1:{free_port()}", port)
    connection = connect_when_ready(port, app)
    for _ in range(20):
        get(connection, "/query")
    connection.close()
    app.sigterm()
    code, err = app.finish()
    assert code == 0, err
    assert telemetry_stop_seconds(tmp_path) <= 1.0
    (warning,) = warnings_of(err)
    assert "telemetry" in warning and "telemetry.endpoint" in warning, err


def test_an_endpoint_that_never_answers_keeps_the_bound_and_holds_no_thread(
    tmp_path: Path,
) -> None:
    """The receiver reads every export and never answers: SIGTERM still exits 0, the telemetry's
    stop kept its 1 s bound with one warning line, and the process ended within the shutdown
    bound + 2 s of SIGTERM (the abandoned flush thread did not keep it alive)."""
    receiver = Receiver(mode="hang")
    try:
        port = free_port()
        app = run(tmp_path, receiver.url, port, "lifecycle.shutdown_timeout=4")
        connection = connect_when_ready(port, app)
        for _ in range(20):
            get(connection, "/query")
        signalled = time.monotonic()
        connection.close()
        app.sigterm()
        code, err = app.finish(timeout=30)
        took = time.monotonic() - signalled
        assert code == 0, err
        assert took <= 4 + 2, err
        assert telemetry_stop_seconds(tmp_path) <= 1.0
        (warning,) = warnings_of(err)
        assert "did not finish within" in warning, err
        assert receiver.bodies, "the export never reached the receiver"
    finally:
        receiver.close()


def test_a_missing_extra_names_the_pip_install(tmp_path: Path) -> None:
    """OpenTelemetry not importable (a package of that name that fails on import shadows it):
    the app is not started, one error line names pip install 'framework[otel]', no traceback."""
    shadow = tmp_path / "shadow" / "opentelemetry"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text('raise ImportError("not installed")\n', encoding="utf-8")
    app = Drained(
        spawn(
            tmp_path,
            "run",
            "tests.telemetry_apps:TracedApp",
            *with_sets("http.port=0", f"database.url='sqlite+aiosqlite:///{tmp_path}/db.sqlite'"),
            env={"PYTHONPATH": f"{shadow.parent}{os.pathsep}{REPO}"},
        )
    )
    code, err = app.finish()
    assert code == 1, err
    assert "pip install 'framework[otel]'" in err
    assert "Traceback" not in err


def test_no_secret_is_in_a_sentry_event(tmp_path: Path) -> None:
    """sentry.dsn points at a loopback receiver that records the envelopes; app code sends an
    exception and a message holding the SecretStr setting and the database password: both
    arrive (flushed by the service's stop, after SIGTERM) and neither secret is in them."""
    receiver = Receiver()
    try:
        port = free_port()
        dsn = receiver.url.replace("http://", "http://publickey@") + "/1"
        app = run(tmp_path, receiver.url, port, f"sentry.dsn='{dsn}'", target="SentryApp")
        connection = connect_when_ready(port, app)
        get(connection, "/report")
        connection.close()
        app.sigterm()
        code, err = app.finish()
        assert code == 0, err
        raw = receiver.raw()
        assert b"ValueError" in raw and b"connecting to" in raw, receiver.bodies
        assert TOKEN.encode() not in raw and DB_PASSWORD.encode() not in raw
        assert b"**********" in raw
        lines = read_journal(tmp_path / "journal.txt")
        assert lines[-2:] == ["Sentry stopping", "Sentry stopped"], lines
    finally:
        receiver.close()
