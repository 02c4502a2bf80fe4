"""A real OTLP/HTTP receiver on loopback for the telemetry tests, and a Sentry envelope recorder.

`Receiver` is a threading HTTP server on 127.0.0.1: every POST body is kept as it came (decoded
from gzip when so encoded), with the bytes as they came off the wire and the request's headers;
``/v1/traces`` bodies are parsed with opentelemetry-proto into `Span` rows, and `Receiver.decoded`
gives every trace and metrics body as opentelemetry-proto's text form (every field, decoded). ``mode="hang"`` reads each request and never answers (until the receiver is closed:
each handler waits on one event, bounded by the test's timeout).
"""

from __future__ import annotations

import gzip
import threading
import zlib
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    attributes: dict[str, Any]


def _value(v: Any) -> Any:
    kind = v.WhichOneof("value")
    if kind == "array_value":
        return [_value(x) for x in v.array_value.values]
    return getattr(v, kind) if kind else None


class Receiver:
    """Records what is posted to it; ``url`` is its base URL."""

    def __init__(self, mode: str = "answer", hang_seconds: float = 60.0) -> None:
        self.bodies: list[tuple[str, bytes]] = []
        self.wire: list[bytes] = []  # every request as read: request line, headers, body
        self.headers: list[dict[str, str]] = []
        self.spans: list[Span] = []
        self.resources: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                head = f"{self.requestline}\r\n{self.headers}".encode("latin-1")
                receiver.record_wire(head + b"\r\n" + body, dict(self.headers.items()))
                encoding = (self.headers.get("Content-Encoding") or "").lower()
                if encoding == "gzip":
                    body = gzip.decompress(body)
                elif encoding == "deflate":
                    body = zlib.decompress(body)
                receiver.record(self.path, body)
                if mode == "hang":
                    receiver._closed.wait(hang_seconds)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def record_wire(self, request: bytes, headers: dict[str, str]) -> None:
        with self._lock:
            self.wire.append(request)
            self.headers.append({k.lower(): v for k, v in headers.items()})

    def record(self, path: str, body: bytes) -> None:
        with self._lock:
            self.bodies.append((path, body))
            if path == "/v1/traces":
                self._parse_traces(body)

    def _parse_traces(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            self.resources.append(
                {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            )
            for scope_spans in resource_spans.scope_spans:
                for s in scope_spans.spans:
                    self.spans.append(
                        Span(
                            s.name,
                            s.kind,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            {a.key: _value(a.value) for a in s.attributes},
                        )
                    )

    def raw(self) -> bytes:
        """Every body received, joined."""
        with self._lock:
            return b"\n".join(body for _, body in self.bodies)

    def decoded(self) -> str:
        """Every ``/v1/traces`` and ``/v1/metrics`` body parsed with opentelemetry-proto, in the
        protobuf text form: every field, strings as UTF-8."""
        from google.protobuf import text_format
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        kinds = {
            "/v1/traces": ExportTraceServiceRequest,
            "/v1/metrics": ExportMetricsServiceRequest,
        }
        texts = []
        with self._lock:
            for path, body in self.bodies:
                message = kinds[path]()
                message.ParseFromString(body)
                texts.append(text_format.MessageToString(message, as_utf8=True))
        return "\n".join(texts)

    def close(self) -> None:
        self._closed.set()
        self.server.shutdown()
        self.server.server_close()
