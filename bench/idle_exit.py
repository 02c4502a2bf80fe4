"""7. Exit of an idle server: SIGTERM to process exit, and last log line to process exit.

``python -m framework run bench.apps:HttpApp`` (defaults: ``lifecycle.shutdown_delay`` 0, log
level INFO on stderr) against bare ``uvicorn bench.asgi:app`` (its defaults), the same ASGI app,
both idle: ready, then 0.3 s without a request, then SIGTERM. The server's stderr is read line by
line as it comes, each line stamped on arrival; the process's exit is when ``wait()`` returns.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time

from bench._common import (
    ROOT,
    TIMES,
    Figure,
    Result,
    child_env,
    framework_cmd,
    free_port,
    median,
    uvicorn_cmd,
    wait_status,
)

IDLE = 0.3
GOAL_FLOOR = 0.2  # seconds: the goal is max(this, GOAL_RATIO x uvicorn's)
GOAL_RATIO = 1.5
GOAL_TAIL = 0.1  # seconds from the last log line to the exit


def _command(which: str, port: int) -> tuple[list[str], str]:
    if which == "ours":
        return framework_cmd("bench.apps:HttpApp", f"http.port={port}"), "/readyz"
    return uvicorn_cmd("bench.asgi:app", port, "--loop", "auto", "--http", "auto"), "/"


def _once(which: str) -> dict[str, float]:
    port = free_port()
    cmd, path = _command(which, port)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    stamps: list[float] = []

    def read() -> None:
        assert proc.stderr is not None
        for _ in iter(proc.stderr.readline, b""):
            stamps.append(time.monotonic())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_status(proc, port, path)
        time.sleep(IDLE)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        exited = time.monotonic()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(5)
    last = max([s for s in stamps if s <= exited] or [sent])
    return {"sigterm_to_exit_s": exited - sent, "last_line_to_exit_s": exited - last}


def run(quick: bool) -> Result:
    runs = 2 if quick else 6
    got: dict[str, list[dict[str, float]]] = {"ours": [], "uvicorn": []}
    for r in range(runs):
        for which in ("ours", "uvicorn") if r % 2 == 0 else ("uvicorn", "ours"):
            got[which].append(_once(which))
    ours = [x["sigterm_to_exit_s"] for x in got["ours"]]
    base = [x["sigterm_to_exit_s"] for x in got["uvicorn"]]
    goal = max(GOAL_FLOOR, GOAL_RATIO * median(base))
    res = Result()
    fig = Figure(
        "exit",
        "idle server: SIGTERM to process exit",
        "s",
        median(ours),
        median(base),
        "uvicorn[standard], same app",
        f"≤ max({GOAL_FLOOR:g} s, {GOAL_RATIO:g}{TIMES})",
        ratio=median([o / b for o, b in zip(ours, base, strict=True)]),
        runs=ours,
        baseline_runs=base,
    )
    fig.met = fig.ours is not None and fig.ours <= goal
    res.figures.append(fig)
    tail = [x["last_line_to_exit_s"] for x in got["ours"]]
    fig = Figure(
        "exit",
        "idle server: last log line to process exit",
        "s",
        median(tail),
        goal=f"≤ {GOAL_TAIL:g} s",
        runs=tail,
    )
    fig.met = fig.ours is not None and fig.ours <= GOAL_TAIL
    res.figures.append(fig)
    rows = [
        "| server | SIGTERM to exit (median) | runs | last log line to exit (median) |",
        "|---|---|---|---|",
    ]
    for name, label in (("ours", "`framework run`"), ("uvicorn", "bare uvicorn")):
        xs = [x["sigterm_to_exit_s"] for x in got[name]]
        t = median([x["last_line_to_exit_s"] for x in got[name]])
        rows.append(
            f"| {label} | {median(xs) * 1000:.0f} ms | "
            + ", ".join(f"{x * 1000:.0f}" for x in xs)
            + f" ms | {t * 1000:.0f} ms |"
        )
    res.details.append(
        f"**Exit of an idle server** ({runs} runs each, alternating; ready, {IDLE:g} s idle, then "
        "SIGTERM; stderr stamped line by line as it arrives):\n\n" + "\n".join(rows)
    )
    res.data = {"runs": got}
    return res


if __name__ == "__main__":  # pragma: no cover - a quick look: python -m bench.idle_exit
    print(_once("ours"), _once("uvicorn"))
