"""SIGTERM under load: run the service, put wrk on it, send SIGTERM mid-run, count non-2xx.

    python loadtest.py [--runs 10] [--duration 4] [--sigterm-after 1.5]

Each run starts `framework run todo.application:App` on a free port with a fresh SQLite file,
waits for /readyz, runs wrk (4 threads, 32 keep-alive connections) on GET /tasks, sends SIGTERM
while wrk is running, and reads wrk's summary. A request the server accepted must be answered
2xx; once the listener is closed, new connections are refused (wrk counts those as socket
errors, not responses). Prints one line per run and a total; exits 1 if any response was not
2xx or the service did not exit 0.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass
class Run:
    requests: int
    non_2xx: int
    socket_errors: str
    exit_code: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            raise RuntimeError(
                f"the service exited with {proc.returncode} before it was ready:\n{err}"
            )
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url}/readyz did not answer 200 within {timeout} s")


def one_run(duration: float, sigterm_after: float, workdir: Path) -> Run:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "framework", "run", "todo.application:App"]
    command += ["--set", f"http.port={port}", "--set", f'database.url="sqlite:///{workdir}/t.db"']
    command += ["--set", 'logging.level="WARNING"']
    service = subprocess.Popen(command, cwd=HERE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_ready(url, service)
        wrk = subprocess.Popen(
            ["wrk", "-t4", "-c32", f"-d{duration:g}s", url + "/tasks"],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(sigterm_after)
        service.send_signal(signal.SIGTERM)
        out, _ = wrk.communicate(timeout=duration + 30)
        code = service.wait(timeout=60)
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
    requests = re.search(r"(\d+) requests in", out)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return Run(
        requests=int(requests.group(1)) if requests else 0,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=errors.group(1).strip() if errors else "none",
        exit_code=code,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--sigterm-after", type=float, default=1.5)
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    runs = []
    for n in range(1, args.runs + 1):
        with tempfile.TemporaryDirectory() as workdir:
            run = one_run(args.duration, args.sigterm_after, Path(workdir))
        runs.append(run)
        print(
            f"run {n}: {run.requests} requests, {run.non_2xx} non-2xx, "
            f"socket errors: {run.socket_errors}, exit code {run.exit_code}"
        )
    bad = sum(r.non_2xx for r in runs)
    failed_exits = sum(1 for r in runs if r.exit_code != 0)
    total = sum(r.requests for r in runs)
    print(
        f"total: {len(runs)} runs, {total} requests, {bad} non-2xx, {failed_exits} non-zero exits"
    )
    return 1 if bad or failed_exits else 0


if __name__ == "__main__":
    sys.exit(main())
