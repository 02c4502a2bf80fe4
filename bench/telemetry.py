"""9. Telemetry: what `TelemetryService` costs an HTTP server, and whether a span is lost at SIGTERM.

The same plain ASGI app (`bench.asgi.app`) served by ``framework run`` twice, access log off:
``bench.apps:HttpApp`` (`HttpService` alone) and ``bench.telemetry:TelemetryApp`` (the same with a
`TelemetryService`: a server span per request, exported over OTLP/HTTP). Both export to `Receiver`,
an OTLP/HTTP receiver in this process on 127.0.0.1 that decodes each traces body with
opentelemetry-proto, counts its server spans that answered 200, and discards it.

- Requests/s, on against off: ``wrk -t2 -c32`` on loopback, the servers back to back in
  alternating order, several short rounds; the ratio is the median of the per-round ratios. It is
  reported, with no goal. A third server, telemetry on with ``telemetry.sample_ratio=0`` (the ASGI
  middleware and its metrics run, no span is recorded or exported), splits the cost in two.
- Spans lost at shutdown under load: a fresh telemetry server under ``wrk`` gets SIGTERM halfway
  through the load; after it exits, the requests wrk got a 200 for are set against the server
  spans with status 200 the receiver got. Goal 0, the worst of the runs. Readiness is polled on
  ``/readyz``, which gets no span, so every span counted is one of wrk's requests.
"""

from __future__ import annotations

import re
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers

from bench import asgi
from bench._common import (
    TIMES,
    Figure,
    Result,
    framework_cmd,
    free_port,
    median,
    spawn,
    stop_process,
    wait_status,
    workdir,
)
from bench.http import wrk
from framework import Application, Settings
from framework.services import HttpService, TelemetryService

CONNECTIONS = 32
SERVER = 2  # the protobuf's SpanKind SERVER
_STATUS_KEYS = ("http.status_code", "http.response.status_code")


class TelemetryContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    telemetry = providers.Singleton(TelemetryService, settings.provided.telemetry)
    http = providers.Singleton(
        HttpService, app=providers.Object(asgi.app), settings=settings.provided.http
    )


class TelemetryApp(Application):
    """`HttpService` serving `bench.asgi.app` with a `TelemetryService` (no edge declared)."""

    container_class = TelemetryContainer


class Receiver:
    """An OTLP/HTTP receiver on 127.0.0.1: answers 200, counts server spans that answered 200."""

    def __init__(self) -> None:
        self.ok_spans = 0
        self.bodies = 0
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path == "/v1/traces":
                    receiver.count(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self, body: bytes) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        ok = 0
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    if span.kind != SERVER:
                        continue
                    status = {a.key: a.value.int_value for a in span.attributes}
                    if any(status.get(key) == 200 for key in _STATUS_KEYS):
                        ok += 1
        with self._lock:
            self.ok_spans += ok
            self.bodies += 1

    def reset(self) -> None:
        with self._lock:
            self.ok_spans = self.bodies = 0

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


SERVERS = ("on", "off", "unsampled")


def _cmd(name: str, port: int, endpoint: str) -> list[str]:
    target = "bench.apps:HttpApp" if name == "off" else "bench.telemetry:TelemetryApp"
    sets = [f"http.port={port}", "http.access_log=false", f"telemetry.endpoint={endpoint}"]
    if name == "unsampled":  # the middleware and metrics, no span recorded or exported
        sets.append("telemetry.sample_ratio=0")
    return framework_cmd(target, *sets)


def _throughput(
    receiver: Receiver, rounds: int, seconds: float, tmp: Path
) -> dict[str, list[float]]:
    """Requests/s of the servers, round by round, back to back in alternating order."""
    port = {name: free_port() for name in SERVERS}
    procs = {
        name: spawn(_cmd(name, port[name], receiver.url), tmp, tmp / f"{name}.log") for name in port
    }
    rps: dict[str, list[float]] = {name: [] for name in port}
    try:
        for name, proc in procs.items():
            wait_status(proc, port[name], "/readyz")
        for name in procs:  # warm up
            wrk(port[name], 1.0)
        for r in range(rounds):
            for name in SERVERS if r % 2 == 0 else SERVERS[::-1]:
                rps[name].append(wrk(port[name], seconds)["rps"])
                time.sleep(0.05)
    finally:
        for proc in procs.values():
            stop_process(proc)
    return rps


def _answered(out: str) -> int:
    """The requests wrk got a 2xx for: all it completed, less the others."""
    total = re.search(r"(\d+) requests in", out)
    other = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if total is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return int(total.group(1)) - (int(other.group(1)) if other else 0)


def _shutdown_run(receiver: Receiver, seconds: float, tmp: Path, run: int) -> dict[str, float]:
    """One fresh telemetry server, loaded by wrk, SIGTERM halfway: answered vs spans received."""
    port = free_port()
    proc = spawn(_cmd("on", port, receiver.url), tmp, tmp / f"shutdown-{run}.log")
    try:
        wait_status(proc, port, "/readyz")
        receiver.reset()
        url = f"http://127.0.0.1:{port}/"
        load = subprocess.Popen(
            ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds:g}s", "--timeout", "5s", url],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        time.sleep(seconds / 2)
        signalled = time.monotonic()
        code = stop_process(proc, timeout=30)
        exited = time.monotonic() - signalled
        out, _ = load.communicate(timeout=seconds + 60)
    finally:
        stop_process(proc)
    answered = _answered(out)
    received = receiver.ok_spans
    return {
        "answered": float(answered),
        "received": float(received),
        "lost": float(max(0, answered - received)),
        "exit_code": float(code),
        "exit_s": exited,
    }


def run(quick: bool) -> Result:
    res = Result()
    rounds, seconds = (2, 1.0) if quick else (6, 2.0)
    runs, load_seconds = (1, 2.0) if quick else (3, 4.0)
    receiver = Receiver()
    try:
        with workdir("telemetry") as tmp:
            rps = _throughput(receiver, rounds, seconds, tmp)
            shutdowns = [_shutdown_run(receiver, load_seconds, tmp, i) for i in range(runs)]
    finally:
        receiver.close()
    ratios = [on / off for on, off in zip(rps["on"], rps["off"], strict=True)]
    unsampled = [u / off for u, off in zip(rps["unsampled"], rps["off"], strict=True)]
    res.figures.append(
        Figure(
            "telemetry",
            f"requests/s, HttpService with TelemetryService / without (wrk -t2 -c{CONNECTIONS})",
            "req/s",
            median(rps["on"]),
            median(rps["off"]),
            "HttpService, telemetry off",
            "(reported: OpenTelemetry's cost per request)",
            ratio=median(ratios),
            runs=rps["on"],
            baseline_runs=rps["off"],
        )
    )
    res.figures.append(
        Figure(
            "telemetry",
            "requests/s, the same with `telemetry.sample_ratio=0` / without (no span recorded: "
            "the ASGI middleware and its metrics)",
            "req/s",
            median(rps["unsampled"]),
            median(rps["off"]),
            "HttpService, telemetry off",
            "(reported: where the cost is)",
            ratio=median(unsampled),
            runs=rps["unsampled"],
            baseline_runs=rps["off"],
        )
    )
    worst = max(s["lost"] for s in shutdowns)
    lost = Figure(
        "telemetry",
        f"server spans lost at SIGTERM under load (wrk -c{CONNECTIONS}; 200s answered - "
        f"spans received, worst of {runs})",
        "count",
        worst,
        goal="0",
        runs=[s["lost"] for s in shutdowns],
        miss_note=LOST_MISS,
    )
    lost.met = worst == 0 and all(s["exit_code"] == 0 for s in shutdowns)
    res.figures.append(lost)
    rows = [
        "| run | 200s answered by wrk | server spans (200) received | lost | exit code "
        "| SIGTERM to exit |",
        "|---|---|---|---|---|---|",
    ] + [
        f"| {i + 1} | {s['answered']:,.0f} | {s['received']:,.0f} | {s['lost']:.0f} "
        f"| {s['exit_code']:.0f} | {s['exit_s']:.2f} s |"
        for i, s in enumerate(shutdowns)
    ]
    per_round = ", ".join(f"{r:.2f}{TIMES}" for r in ratios)
    res.details.append(
        f"**Telemetry** ({rounds} rounds of {seconds:g} s per server, `wrk -t2 -c{CONNECTIONS}` "
        f"on 127.0.0.1, access log off; both export to an OTLP/HTTP receiver in the benchmark's "
        f"process). Requests/s with telemetry on: {median(rps['on']):,.0f}, on with sample "
        f"ratio 0: {median(rps['unsampled']):,.0f}, off: {median(rps['off']):,.0f}; on / off "
        f"per round: {per_round}. Spans at shutdown: "
        f"SIGTERM {load_seconds / 2:g} s into {load_seconds:g} s of load, then the server's spans "
        "with status 200 set against wrk's 200s:\n\n" + "\n".join(rows)
    )
    res.notes.append(
        "Telemetry: `TelemetryService` with its defaults (sample ratio 1.0, the SDK's batch "
        "processor: 2048 spans queued at most, batches of 512); every request of the load is a "
        "server span. The receiver runs in the benchmark's process and discards what it counted."
    )
    res.data = {"rps": rps, "ratios": ratios, "shutdowns": shutdowns}
    return res


LOST_MISS = (
    "A span is lost when the server answered a request but the receiver never got its span: "
    "dropped by the SDK's batch processor when its queue (2048 spans) is full under load, or "
    "not flushed within the telemetry's stop bound. The table under Details gives each run."
)
