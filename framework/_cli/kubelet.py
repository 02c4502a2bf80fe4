"""The termination simulator: an application in a subprocess, keep-alive clients, and the kubelet.

`simulate` starts ``python -m framework run TARGET ...`` on a loopback port, waits for ``/readyz``,
drives N HTTP clients (``http.client`` loops, bounded in count and time), then plays what a
Kubernetes node does when a pod is deleted:

- t = 0: the pod is deleted; the preStop sleep (``pre_stop`` seconds) runs first;
- t = pre_stop: SIGTERM to the process;
- until SIGTERM + ``endpoint_lag``: the Service, kube-proxy and the load balancers still route new
  requests to the pod (new connections too), whatever the process is doing;
- t = ``grace`` (counted from the deletion, as Kubernetes counts it): SIGKILL if still running.

Every request is counted: answered (a response below 500), failed (connection refused, a 5xx:
what a real cluster would have dropped) or unanswered (accepted, never answered: the connection
reset or the process killed under it). A keep-alive connection the server closed while idle is
reopened once, as HTTP clients do, before the request counts.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

__all__ = ("Knobs", "SimulationReport", "simulate")

REQUEST_TIMEOUT = 5.0
"""A request not answered within this is unanswered."""

PAUSE = 0.01
"""Each client's pause between two requests: steady traffic, not a flood."""

MAX_REQUESTS_PER_CLIENT = 100_000
"""A bound on each client's loop, whatever the clock does."""


@dataclass(frozen=True)
class Knobs:
    """What the simulated cluster does; seconds unless named otherwise."""

    clients: int = 4
    endpoint_lag: float = 2.0
    pre_stop: float = 0.0
    grace: float = 32.0
    warmup: float = 0.5
    path: str = "/livez"
    ready_timeout: float = 60.0


@dataclass
class SimulationReport:
    """What happened, for the text report, ``--json`` and the tests."""

    sent: int = 0
    answered: int = 0
    failed: int = 0
    unanswered: int = 0
    exit_code: int | None = None
    sigkill: bool = False
    knobs: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)
    timeline: list[tuple[float, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every request answered and the process exited on its own."""
        return self.answered == self.sent and not self.sigkill

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["ok"] = self.ok
        data["timeline"] = [{"t": round(t, 3), "event": what} for t, what in self.timeline]
        return data

    def text(self) -> str:
        knobs = ", ".join(f"{key} {value}" for key, value in self.knobs.items())
        lines = [f"simulated: {knobs}", "timeline (s from the pod's deletion):"]
        lines += [f"  {t:7.3f}  {what}" for t, what in self.timeline]
        lines.append(
            f"requests: sent {self.sent}, answered {self.answered}, failed {self.failed}, "
            f"unanswered {self.unanswered}"
        )
        lines += [f"  {count} x {reason}" for reason, count in sorted(self.reasons.items())]
        code = "none (killed)" if self.exit_code is None else str(self.exit_code)
        lines.append(f"exit code: {code}; SIGKILL needed: {'yes' if self.sigkill else 'no'}")
        lines.append("outcome: " + ("ok" if self.ok else "requests lost or process killed"))
        return "\n".join(lines)


class _Tally:
    """The clients' counts, shared between their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts = {"sent": 0, "answered": 0, "failed": 0, "unanswered": 0}
        self.reasons: dict[str, int] = {}
        self.first_lost: float | None = None

    def add(self, outcome: str, reason: str | None, at: float) -> None:
        with self.lock:
            self.counts["sent"] += 1
            self.counts[outcome] += 1
            if reason is not None:
                self.reasons[reason] = self.reasons.get(reason, 0) + 1
                if self.first_lost is None:
                    self.first_lost = at


class _Client(threading.Thread):
    """One keep-alive client: request after request until the pod is out of the endpoints."""

    def __init__(self, port: int, path: str, routed: threading.Event, tally: _Tally, t0: float):
        super().__init__(daemon=True)
        self.port, self.path, self.routed, self.tally, self.t0 = port, path, routed, tally, t0
        self.deadline = time.monotonic() + 3600.0  # replaced by the play's own bound

    def run(self) -> None:
        conn: http.client.HTTPConnection | None = None
        for _ in range(MAX_REQUESTS_PER_CLIENT):
            if not self.routed.is_set() or time.monotonic() > self.deadline:
                break
            conn, outcome, reason = self._one(conn)
            self.tally.add(outcome, reason, time.monotonic() - self.t0)
            time.sleep(PAUSE)
        if conn is not None:
            conn.close()

    def _one(
        self, conn: http.client.HTTPConnection | None
    ) -> tuple[http.client.HTTPConnection | None, str, str | None]:
        """One request; a reused connection found closed is reopened once."""
        reused = conn is not None
        for _ in range(2):
            if conn is None:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
            try:
                conn.request("GET", self.path)
                response = conn.getresponse()
                response.read()
            except ConnectionRefusedError:
                conn.close()
                return None, "failed", "connection refused"
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as e:
                conn.close()
                conn = None
                if reused:  # closed while idle: a client opens a new connection and retries
                    reused = False
                    continue
                return None, "unanswered", f"connection closed with no answer ({type(e).__name__})"
            except (TimeoutError, OSError, http.client.HTTPException) as e:
                conn.close()
                return None, "unanswered", f"no answer ({type(e).__name__})"
            if response.status >= 500:
                return _kept(conn, response), "failed", f"HTTP {response.status}"
            return _kept(conn, response), "answered", None
        return None, "unanswered", "connection closed twice with no answer"


def _kept(
    conn: http.client.HTTPConnection, response: http.client.HTTPResponse
) -> http.client.HTTPConnection | None:
    """The connection to reuse, or None when the server said ``Connection: close``."""
    if response.will_close:
        conn.close()
        return None
    return conn


def _wait_ready(
    proc: subprocess.Popen[bytes], port: int, readyz: str, timeout: float
) -> int | None:
    """Poll ``readyz`` until 200 (None) or the process exits (its code); TimeoutError past bound."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return proc.returncode
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
        try:
            conn.request("GET", readyz)
            if conn.getresponse().status == 200:
                return None
        except (OSError, http.client.HTTPException):
            pass  # not listening yet
        finally:
            conn.close()
        time.sleep(0.05)
    raise TimeoutError(f"/readyz did not answer 200 within {timeout:g} s")


class SimulationError(Exception):
    """The application never got ready: nothing to simulate. The message says why."""


def simulate(
    command: Sequence[str],
    port: int,
    knobs: Knobs,
    readyz: str = "/readyz",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> SimulationReport:
    """Run ``command`` (the application, listening on 127.0.0.1:``port``) and play a pod deletion."""
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(  # noqa: S603 - our own interpreter running `framework run`
            list(command), cwd=cwd, env=env, stdout=log, stderr=log
        )
        try:
            _ready_or_fail(proc, port, readyz, knobs.ready_timeout, log)
            return _play(proc, port, knobs)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()


def _ready_or_fail(
    proc: subprocess.Popen[bytes], port: int, readyz: str, timeout: float, log: Any
) -> None:
    try:
        code = _wait_ready(proc, port, readyz, timeout)
    except TimeoutError as exc:
        raise SimulationError(f"{exc}; the application's output:\n{_tail(log)}") from None
    if code is not None:
        raise SimulationError(
            f"the application exited with {code} before it was ready; its output:\n{_tail(log)}"
        )


def _tail(log: Any, lines: int = 20) -> str:
    log.flush()
    log.seek(0)
    text: str = log.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


def _play(proc: subprocess.Popen[bytes], port: int, knobs: Knobs) -> SimulationReport:
    """Warm up, then the kubelet: preStop, SIGTERM, the endpoint lag, SIGKILL at the grace."""
    report = SimulationReport(knobs=_shown(knobs))
    tally, routed = _Tally(), threading.Event()
    routed.set()
    t0 = time.monotonic() + knobs.warmup  # the pod's deletion
    clients = [_Client(port, knobs.path, routed, tally, t0) for _ in range(knobs.clients)]
    bound = t0 + max(knobs.grace, knobs.pre_stop + knobs.endpoint_lag) + REQUEST_TIMEOUT + 5.0
    for client in clients:
        client.deadline = bound
        client.start()

    def note(what: str) -> None:
        report.timeline.append((time.monotonic() - t0, what))

    time.sleep(max(0.0, t0 - time.monotonic()))
    note(f"pod deleted; {knobs.clients} clients running; preStop sleep {knobs.pre_stop:g} s")
    time.sleep(max(0.0, t0 + knobs.pre_stop - time.monotonic()))
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        note("SIGTERM")
    _watch(proc, report, routed, t0, knobs, note)
    for client in clients:
        client.join(timeout=max(0.0, bound - time.monotonic()) + 1.0)
    report.sent, report.answered = tally.counts["sent"], tally.counts["answered"]
    report.failed, report.unanswered = tally.counts["failed"], tally.counts["unanswered"]
    report.reasons = dict(tally.reasons)
    if tally.first_lost is not None:
        report.timeline.append((tally.first_lost, "first request lost"))
    report.timeline.sort()
    return report


def _watch(
    proc: subprocess.Popen[bytes],
    report: SimulationReport,
    routed: threading.Event,
    t0: float,
    knobs: Knobs,
    note: Any,
) -> None:
    """From SIGTERM: take the pod out of the endpoints after the lag, SIGKILL at the grace."""
    out_at = t0 + knobs.pre_stop + knobs.endpoint_lag
    kill_at = t0 + knobs.grace
    exited = False
    for _ in range(1_000_000):  # bounded by kill_at and out_at too
        now = time.monotonic()
        if routed.is_set() and now >= out_at:
            routed.clear()
            note(f"out of the endpoints (lag {knobs.endpoint_lag:g} s): no new requests")
        if not exited and proc.poll() is not None:
            exited = True
            report.exit_code = proc.returncode
            note(f"process exited with {proc.returncode}")
        if not exited and now >= kill_at:
            proc.kill()
            proc.wait()
            exited, report.sigkill = True, True
            note(f"SIGKILL (grace period {knobs.grace:g} s)")
        if exited and not routed.is_set():
            return
        time.sleep(0.005)


def _shown(knobs: Knobs) -> dict[str, Any]:
    return {
        "clients": knobs.clients,
        "endpoint_lag": knobs.endpoint_lag,
        "pre_stop": knobs.pre_stop,
        "grace": knobs.grace,
        "path": knobs.path,
    }


def run_command(target: str, args: Sequence[str]) -> list[str]:
    """``python -m framework run TARGET ARGS`` with this interpreter."""
    return [sys.executable, "-m", "framework", "run", target, *args]


def child_env() -> dict[str, str]:
    """The child's environment: this one, with the current directory importable first."""
    path = os.environ.get("PYTHONPATH")
    cwd = os.getcwd()
    return {**os.environ, "PYTHONPATH": cwd if not path else f"{cwd}{os.pathsep}{path}"}
