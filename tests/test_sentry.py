"""SentryService's stop bound against a DSN that fails: real `framework run` processes
(``tests.telemetry_apps:SentryApp``), real SIGTERM, a DSN on loopback that refuses (a closed port)
or accepts and never answers (`Silent`)."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from tests._process import free_port
from tests.test_telemetry import connect_when_ready, get, run, warnings_of

pytestmark = pytest.mark.slow

STOP_TIMEOUT = 1.0  # services.sentry.stop_timeout
SHUTDOWN_TIMEOUT = 4.0  # lifecycle.shutdown_timeout


class Silent:
    """A loopback socket that accepts every connection and never reads or answers."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.server.getsockname()[1])
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            self.accepted.append(connection)

    def close(self) -> None:
        self.server.close()
        for connection in self.accepted:
            connection.close()


def sentry_stop_seconds(tmp_path: Path) -> float:
    report = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    (entry,) = [e for e in report["services"] if e["service"] == "sentry"]
    assert entry["stop"]["outcome"] == "ok", entry
    return float(entry["stop"]["seconds"])


@pytest.mark.parametrize("dsn_host", ["refusing", "silent"])
def test_a_failing_dsn_costs_at_most_the_stop_bound_and_one_warning(
    tmp_path: Path, dsn_host: str
) -> None:
    """The app sends Sentry an exception and a message, then gets SIGTERM: exit 0, Sentry's stop
    kept its bound, one warning line (none of urllib3's retry lines), and the process ended within
    the shutdown bound + 2 s of SIGTERM: sentry-sdk's sending thread, stuck on the silent
    socket, did not keep it alive."""
    silent = Silent() if dsn_host == "silent" else None
    try:
        dsn_port = silent.port if silent is not None else free_port()
        port = free_port()
        app = run(
            tmp_path,
            "http://127.0.0.1:9",  # no telemetry service in this app: unused
            port,
            f"sentry.dsn='http://publickey@127.0.0.1:{dsn_port}/1'",
            f"lifecycle.shutdown_timeout={SHUTDOWN_TIMEOUT:g}",
            target="SentryApp",
        )
        connection = connect_when_ready(port, app)
        get(connection, "/report")
        connection.close()
        signalled = time.monotonic()
        app.sigterm()
        code, err = app.finish(timeout=30)
        took = time.monotonic() - signalled
        assert code == 0, err
        assert took <= SHUTDOWN_TIMEOUT + 2, err
        assert sentry_stop_seconds(tmp_path) <= STOP_TIMEOUT
        (warning,) = warnings_of(err)
        assert "sentry: " in warning and "check sentry.dsn" in warning, err
        if silent is not None:
            assert silent.accepted, "sentry-sdk never connected to the silent socket"
            assert "did not finish within" in warning, err
        else:
            assert "could not be sent" in warning, err
    finally:
        if silent is not None:
            silent.close()
