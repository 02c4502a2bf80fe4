"""Instructions per request, counted by callgrind: a count, not a time.

Requests per second on this machine move with whatever else its two shared cores run; the number of
instructions a server executes per request does not (callgrind counts them, the same for the same
binary and input whatever the load). Each server runs under ``valgrind --tool=callgrind``; once it
answers, a short ``wrk`` warms it up, the counters are zeroed (``callgrind_control -z``), ``wrk``
loads it for a few seconds, and the counters are dumped: instructions / requests answered. The idle
work of those seconds (uvicorn's once-a-tick housekeeping, the same on both sides) is included.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench._common import spawn, stop_process, wait_status, wrk_output

__all__ = ("available", "per_request", "per_request_pair")

_WARM_UP = 3.0


def available() -> bool:
    return shutil.which("valgrind") is not None and shutil.which("callgrind_control") is not None


def per_request(cmd: list[str], port: int, workdir: Path, name: str, seconds: float) -> float:
    """Instructions per request of the server ``cmd`` listening on ``port``."""
    out = workdir / f"callgrind.{name}.out"
    proc = spawn(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd],
        workdir,
        workdir / f"callgrind.{name}.log",
    )
    try:
        wait_status(proc, port, "/", timeout=300, interval=0.5)
        _wrk(port, _WARM_UP)
        _control("-z", proc.pid)
        requests = _wrk(port, seconds)
        _control("--dump=load", proc.pid)
    finally:
        stop_process(proc, 120)
    dumps = sorted(workdir.glob(f"callgrind.{name}.out.*"))
    if not dumps:
        raise RuntimeError(f"callgrind wrote no dump for {name} (see {workdir})")
    return _total(dumps[-1]) / requests


def per_request_pair(
    servers: dict[str, list[str]], ports: dict[str, int], workdir: Path, seconds: float
) -> dict[str, float]:
    """`per_request` of each server, two at a time (counts do not depend on the load)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(per_request, cmd, ports[name], workdir, name, seconds)
            for name, cmd in servers.items()
        }
        return {name: future.result() for name, future in futures.items()}


def _wrk(port: int, seconds: float) -> int:
    out = wrk_output(port, seconds, threads=1, connections=8, timeout="10s")
    found = re.search(r"(\d+) requests in", out)
    if found is None or int(found.group(1)) == 0:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return int(found.group(1))


def _control(option: str, pid: int) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], capture_output=True, check=True)


def _total(dump: Path) -> int:
    for line in dump.read_text(errors="replace").splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise RuntimeError(f"no total in {dump}")
