"""The planted-secret sweep for what telemetry exports: no secret reaches the OTLP receiver.

A real `framework run` of ``tests.telemetry_apps:TracedApp`` on the test module's PostgreSQL, whose
URL carries the server's real password in its userinfo part (the app connects with it), with three
more planted values: a SecretStr setting (``app.token``), an export header
(``telemetry.headers.x-api-key``) and the database URL again in a resource attribute (through
``OTEL_RESOURCE_ATTRIBUTES``); ``telemetry.service_name`` holds the token. The app's own code puts
them all on spans: the request's server span and a child span of its own (its name, an attribute
and an attribute key, events, recorded exceptions, its status text), and on a metric (its
description, a data point's attributes). Every byte the receiver got
(each request as read off the socket, each body decoded with opentelemetry-proto) is searched: the
header value is only in its own header line, nothing else anywhere; the masks are there, so the
sweep cannot pass by exporting nothing. Log lines written inside either span carry its ids, in
the text and the JSON format.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from framework._engine.secrets import SECRET_MASK
from tests._otlp import Receiver
from tests._process import free_port, spawn, with_sets
from tests.postgres import PostgresServer
from tests.test_telemetry import SERVER, TOKEN, Drained, connect_when_ready, get, warnings_of

pytestmark = pytest.mark.slow

HEADER = "hdr-PLANTED-5e1d7c"


def run(tmp_path: Path, receiver: Receiver, port: int, url: str, log_format: str) -> Drained:
    proc = spawn(
        tmp_path,
        "run",
        "tests.telemetry_apps:TracedApp",
        *with_sets(
            f"telemetry.endpoint='{receiver.url}'",
            f"telemetry.headers.x-api-key={HEADER}",
            f"telemetry.service_name='traced-{TOKEN}'",
            f"http.port={port}",
            f"database.url='{url}'",
            f"app.token={TOKEN}",
            f"logging.format={log_format}",
        ),
        env={"OTEL_RESOURCE_ATTRIBUTES": f"deployment.db={url}"},
    )
    return Drained(proc)


def ids_of_line(err: str, message: str, log_format: str) -> tuple[str, str]:
    """The trace_id and span_id of the one log line with ``message``."""
    if log_format == "json":
        (record,) = [
            json.loads(line)
            for line in err.splitlines()
            if line.startswith("{") and json.loads(line)["message"] == message
        ]
        return record["trace_id"], record["span_id"]
    (line,) = [line for line in err.splitlines() if f"| {message}" in line]
    fields = dict(f.split("=", 1) for f in line.rsplit(" | ", 1)[1].split())
    return fields["trace_id"], fields["span_id"]


def assert_nothing_planted_was_received(receiver: Receiver, planted: tuple[str, ...]) -> str:
    """No planted value in any request as read (but the header value in its own header line of
    every request), nor in the decoded bodies; the decoded text is returned."""
    assert receiver.wire, "nothing was exported"
    for request, headers in zip(receiver.wire, receiver.headers, strict=True):
        assert headers["x-api-key"] == HEADER  # the header's purpose: sent, as a header
        header_line = re.compile(rb"^x-api-key: " + HEADER.encode() + rb"\r?$", re.I | re.M)
        rest, found = header_line.subn(b"", request)
        assert found == 1, request
        at = [i for i in map(rest.find, map(str.encode, planted)) if i >= 0]
        line = request.split(b"\r\n", 1)[0]
        assert not at, f"{line!r} got: {[rest[max(0, i - 200) : i + 60] for i in at]}"
    decoded = receiver.decoded()
    assert not [value for value in planted if value in decoded], decoded
    return decoded


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_planted_secret_is_exported_and_log_lines_carry_the_span_ids(
    tmp_path: Path, postgres: PostgresServer, log_format: str
) -> None:
    receiver = Receiver()
    try:
        port = free_port()
        app = run(tmp_path, receiver, port, postgres.url, log_format)
        connection = connect_when_ready(port, app)
        get(connection, "/secret")
        get(connection, "/query")  # a statement span, with the connection's attributes
        connection.close()
        app.sigterm()
        code, err = app.finish()
        assert code == 0, err
        assert not warnings_of(err), err
        planted = (TOKEN, postgres.password, HEADER)
        assert not [value for value in planted if value in err], err
        decoded = assert_nothing_planted_was_received(receiver, planted)

        (server,) = [s for s in receiver.spans if s.name == "GET /secret" and s.kind == SERVER]
        (child,) = [s for s in receiver.spans if s.parent_span_id == server.span_id]
        assert server.attributes["app.token"] == SECRET_MASK
        assert ":***@127.0.0.1" in server.attributes["app.urls"][0]
        assert child.name == f"login {SECRET_MASK}"
        assert child.attributes["app.header"] == SECRET_MASK
        assert f"app.key.{SECRET_MASK}" in child.attributes
        assert f"denied: {SECRET_MASK} at postgresql+asyncpg://postgres:***@" in decoded
        assert f"{SECRET_MASK} refused by postgresql+asyncpg://postgres:***@" in decoded
        assert receiver.resources[0]["service.name"] == f"traced-{SECRET_MASK}"
        assert ":***@127.0.0.1" in receiver.resources[0]["deployment.db"]
        assert any(s.attributes.get("db.statement") == "SELECT 1 + $1" for s in receiver.spans)
        assert f'description: "logins with {SECRET_MASK}"' in decoded

        for message, span in (("inside the secret span", server), ("inside the child span", child)):
            assert ids_of_line(err, message, log_format) == (span.trace_id, span.span_id)
    finally:
        receiver.close()
