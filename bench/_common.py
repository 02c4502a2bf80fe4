"""What every benchmark shares: figures, medians, subprocesses, loopback HTTP probes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
TIMES = "\u00d7"


@dataclass
class Figure:
    """One row of the table: ours against a baseline measured in the same run."""

    bench: str
    name: str
    unit: str
    ours: float | None
    baseline: float | None = None
    baseline_name: str = ""
    goal: str = ""
    met: bool | None = None
    ratio: float | None = None
    runs: list[float] = field(default_factory=list)
    baseline_runs: list[float] = field(default_factory=list)
    miss_note: str = ""

    def __post_init__(self) -> None:
        counted = self.unit in ("count", "lines")  # counts are absolute: no ratio
        if self.ratio is None and not counted and self.ours is not None and self.baseline:
            self.ratio = self.ours / self.baseline

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Result:
    """What one benchmark returns: its figures, detail tables and notes."""

    figures: list[Figure] = field(default_factory=list)
    details: list[str] = field(default_factory=list)  # Markdown blocks, shown under the table
    notes: list[str] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a subprocess: no APP_* settings leaking in, the repo importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@contextlib.contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{prefix}-") as d:
        yield Path(d)


def framework_cmd(target: str, *sets: str) -> list[str]:
    cmd = [PYTHON, "-m", "framework", "run", target]
    for s in sets:
        cmd += ["--set", s]
    return cmd


def uvicorn_cmd(target: str, port: int, *extra: str) -> list[str]:
    return [
        PYTHON,
        "-m",
        "uvicorn",
        target,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--http",
        "h11",
        "--loop",
        "asyncio",
        *extra,
    ]


def spawn(cmd: list[str], cwd: Path, log: Path, **env: str) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    try:
        return subprocess.Popen(
            cmd, cwd=cwd, env=child_env(**env), stdout=out, stderr=subprocess.STDOUT
        )
    finally:
        out.close()


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    """SIGTERM, wait, then SIGKILL if it does not end: every process we start ends here."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def http_status(port: int, path: str = "/", timeout: float = 1.0) -> int | None:
    """One ``GET`` on a fresh connection: the status, or None when nothing answered."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
            )
            head = s.recv(64)
    except OSError:
        return None
    parts = head.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        return None
    return int(parts[1])


def wait_status(
    proc: subprocess.Popen[bytes],
    port: int,
    path: str,
    *,
    status: int = 200,
    timeout: float = 20.0,
    interval: float = 0.005,
) -> float:
    """Poll until ``GET path`` answers ``status``; the monotonic time it did. Raises on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if http_status(port, path, timeout=0.5) == status:
            return time.monotonic()
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before it was ready")
        time.sleep(interval)
    raise RuntimeError(f"{proc.args!r}: no {status} on {path} within {timeout} s")


def wrk_output(port: int, seconds: float, *, threads: int, connections: int, timeout: str) -> str:
    """What ``wrk`` prints after loading ``GET /`` on 127.0.0.1:``port`` for ``seconds``."""
    return subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--timeout",
            timeout,
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
