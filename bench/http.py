"""4. HTTP overhead: requests/s through `HttpService` against bare uvicorn.

The same plain ASGI app (`bench.asgi.app`, ``GET /`` answers ``hello``) served by ``framework run
bench.apps:HttpApp`` and by ``uvicorn bench.asgi:app``, in three pairs: against uvicorn[standard]
(uvloop and httptools, as users run it in production) with the access log off; with each side's
defaults (access log on) at log level WARNING; and the older pair on h11 and plain asyncio. Load:
``wrk -t2 -c32`` on loopback, each pair back to back in alternating order. granian (one worker,
uvloop, access log off), a server written in Rust, is measured beside the first pair for reference
when it is installed (``pip install -e '.[bench]'``); it sets no goal. So is a second
uvicorn[standard], the same command again: an A/A control whose ratio to the first is the noise of
the run. Then the first two pairs
again under callgrind: instructions per request (`bench._callgrind`), which the load does not move.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import time
from pathlib import Path

from bench import _callgrind
from bench._common import (
    PYTHON,
    TIMES,
    Figure,
    Result,
    framework_cmd,
    free_port,
    median,
    spawn,
    stop_process,
    uvicorn_cmd,
    wait_status,
    workdir,
    wrk_output,
)

GOAL = 0.97
CONNECTIONS = 32


SERVERS: dict[str, str] = {
    "ours_std": "HttpService, defaults (`http.loop`/`http.http` auto), `http.access_log=false`",
    "uvicorn_std": "uvicorn[standard] (uvloop, httptools), `--no-access-log`",
    "ours_log": "HttpService, defaults (access log on), `logging.level=WARNING`",
    "uvicorn_log": "uvicorn[standard], its defaults (access log on), `--log-level warning`",
    "ours_h11": "HttpService, `http.http=h11`, `http.loop=asyncio`, `http.access_log=false`",
    "uvicorn_h11": "bare uvicorn, `--http h11 --loop asyncio --no-access-log`",
    "control": "uvicorn[standard] again, `--no-access-log` (A/A control: the same server twice)",
    "granian": "granian (reference), 1 worker, `--loop uvloop`, access log off",
}
BASELINES = {
    "uvicorn_std": "uvicorn[standard], `--no-access-log`",
    "uvicorn_log": "uvicorn[standard], `--log-level warning`",
    "uvicorn_h11": "bare uvicorn, h11, asyncio",
}
PAIRS = (
    ("ours_std", "uvicorn_std", "uvicorn[standard], access log off"),
    ("ours_log", "uvicorn_log", "uvicorn[standard], defaults, log level WARNING"),
    ("ours_h11", "uvicorn_h11", "h11 on asyncio, access log off"),
)


def _servers(port: dict[str, int]) -> dict[str, list[str]]:
    def ours(name: str, *extra: str) -> list[str]:
        return framework_cmd("bench.apps:HttpApp", f"http.port={port[name]}", *extra)

    def uvicorn(name: str, *extra: str) -> list[str]:
        return uvicorn_cmd("bench.asgi:app", port[name], *extra)

    standard = ("--loop", "auto", "--http", "auto")
    servers = {
        "ours_std": ours("ours_std", "http.access_log=false"),
        "uvicorn_std": uvicorn("uvicorn_std", *standard, "--no-access-log"),
        "ours_log": ours("ours_log", "logging.level=WARNING"),
        "uvicorn_log": uvicorn("uvicorn_log", *standard, "--log-level", "warning"),
        "ours_h11": ours("ours_h11", "http.access_log=false", "http.http=h11", "http.loop=asyncio"),
        "uvicorn_h11": uvicorn("uvicorn_h11", "--no-access-log"),
        "control": uvicorn("control", *standard, "--no-access-log"),
    }
    if "granian" in port:
        servers["granian"] = [
            PYTHON,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            "127.0.0.1",
            f"--port={port['granian']}",
            "--workers=1",
            "--loop=uvloop",
            "--no-ws",
            "--log-level=warning",
            "bench.asgi:app",
        ]
    return servers


def _granian_installed() -> bool:
    return importlib.util.find_spec("granian") is not None


def wrk(port: int, seconds: float) -> dict[str, float]:
    out = wrk_output(port, seconds, threads=2, connections=CONNECTIONS, timeout="5s")
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if rps is None:
        raise RuntimeError(f"cannot read wrk's output:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
        "socket_errors": float(sum(int(g) for g in errors.groups())) if errors else 0.0,
    }


def _figure(ours_name: str, base_name: str, label: str, measured: Measured) -> Figure:
    ours, base = _rps(measured, ours_name), _rps(measured, base_name)
    fig = Figure(
        "http",
        f"requests/s, HttpService / {label} (wrk -t2 -c{CONNECTIONS})",
        "req/s",
        median(ours),
        median(base),
        BASELINES[base_name],
        f"≥ {GOAL}{TIMES}",
        ratio=median(_per_round(measured, ours_name, base_name)),
        runs=ours,
        baseline_runs=base,
        miss_note=MISS,
    )
    fig.met = fig.ratio is not None and fig.ratio >= GOAL
    return fig


Measured = dict[str, list[dict[str, float]]]


def _load(port: dict[str, int], rounds: int, seconds: float) -> Measured:
    """Every pair in every round, ours and its baseline back to back, in alternating order."""
    measured: Measured = {name: [] for name in port}
    granian = "granian" in port
    with workdir("http") as tmp:
        procs = {
            name: spawn(cmd, tmp, Path(tmp) / f"{name}.log") for name, cmd in _servers(port).items()
        }
        try:
            for name, proc in procs.items():
                wait_status(proc, port[name], "/")
            for name in procs:  # warm up
                wrk(port[name], 1.0)
            for r in range(rounds):
                for ours, base, _ in PAIRS:
                    group = [ours, base]
                    if ours == "ours_std":
                        group += ["control", "granian"] if granian else ["control"]
                    for name in group if r % 2 == 0 else group[::-1]:
                        measured[name].append(wrk(port[name], seconds))
                        time.sleep(0.05)
        finally:
            for proc in procs.values():
                stop_process(proc)
    return measured


def run(quick: bool) -> Result:
    res = Result()
    if shutil.which("wrk") is None:
        res.figures.append(
            Figure(
                "http",
                "requests/s, HttpService / uvicorn[standard]",
                "req/s",
                None,
                goal=f"≥ {GOAL}{TIMES}",
                miss_note="wrk is not installed (apt-get install -y wrk): not measured.",
            )
        )
        return res
    # short rounds, many of them: the shared cores' load drifts, and a ratio is taken per round
    rounds, seconds = (2, 1.0) if quick else (5, 2.0)
    port = {name: free_port() for name in SERVERS if name != "granian" or _granian_installed()}
    measured = _load(port, rounds, seconds)
    for ours, base, label in PAIRS:
        res.figures.append(_figure(ours, base, label, measured))
    res.figures.append(_control(measured))
    counted = _instructions(res, 3.0 if quick else 8.0)
    rows = [
        "| server | requests/s (median) | / its baseline (median of rounds) | per round "
        "| non-2xx | socket errors |",
        "|---|---|---|---|---|---|",
    ]
    for ours, base, _ in PAIRS:
        rows += [_row(measured, ours, base), _row(measured, base, base)]
    rows.append(_row(measured, "control", "uvicorn_std"))
    if "granian" in measured:  # the other way round: ours against it
        rows.append(_row(measured, "granian", "granian", "ours_std"))
    granian = (
        "granian is measured beside the first pair, for reference."
        if "granian" in measured
        else "granian is not installed here (`pip install -e '.[bench]'`): not measured."
    )
    res.details.append(
        f"**HTTP overhead** ({rounds} rounds of {seconds:g} s per server; each pair back to back, "
        f"in alternating order; `wrk -t2 -c{CONNECTIONS}` on 127.0.0.1; ratios are medians of "
        f"per-round ratios). {granian}\n\n" + "\n".join(rows)
    )
    res.notes.append(
        "HTTP overhead: each pair runs the same ASGI app (`bench.asgi.app`); the framework adds "
        "its front app (probe paths, drain tracking) and its logging setup. uvicorn[standard] is "
        "uvicorn with uvloop and httptools, as users install it for production."
    )
    res.data = {"measured": measured, "instructions_per_request": counted}
    return res


def _rps(measured: Measured, name: str) -> list[float]:
    return [m["rps"] for m in measured[name]]


def _per_round(measured: Measured, name: str, base: str) -> list[float]:
    """``name``'s requests/s over ``base``'s, round by round."""
    return [o / b for o, b in zip(_rps(measured, name), _rps(measured, base), strict=True)]


def _row(measured: Measured, name: str, base: str, ours: str | None = None) -> str:
    """A row of the details table: ``name`` against ``base`` (or, given ``ours``, that server
    against ``name``: the reference row)."""
    ratios = _per_round(measured, ours or name, base)
    versus = f"HttpService (first row) / {name}: " if ours else ""
    return (
        f"| {SERVERS[name]} | {median(_rps(measured, name)):,.0f} | {versus}{median(ratios):.3f} "
        f"| {min(ratios):.2f}-{max(ratios):.2f} "
        f"| {sum(m['non_2xx'] for m in measured[name]):.0f} "
        f"| {sum(m['socket_errors'] for m in measured[name]):.0f} |"
    )


def _control(measured: Measured) -> Figure:
    """uvicorn[standard] against itself: how far two identical servers drift apart in this run."""
    ctl, base = _rps(measured, "control"), _rps(measured, "uvicorn_std")
    return Figure(
        "http",
        f"requests/s, A/A control: uvicorn[standard] / the same uvicorn[standard] (wrk -t2 "
        f"-c{CONNECTIONS})",
        "req/s",
        median(ctl),
        median(base),
        BASELINES["uvicorn_std"],
        "(reported: the noise of this run)",
        ratio=median(_per_round(measured, "control", "uvicorn_std")),
        runs=ctl,
        baseline_runs=base,
    )


def _instructions(res: Result, seconds: float) -> dict[str, float]:
    """The two goal pairs again, under callgrind: instructions per request (see `_callgrind`)."""
    pairs = PAIRS[:2]
    if not _callgrind.available():
        for _, _, label in pairs:
            res.figures.append(
                Figure(
                    "http",
                    f"instructions per request, HttpService / {label}",
                    "instructions/request",
                    None,
                    goal=f"≤ {1 / GOAL:.2f}{TIMES}",
                    miss_note="valgrind is not installed (apt-get install -y valgrind): "
                    "not measured.",
                )
            )
        return {}
    counted: dict[str, float] = {}
    with workdir("callgrind") as tmp:
        for ours, base, _ in pairs:
            ports = {name: free_port() for name in SERVERS if name != "granian"}
            every = _servers(ports)
            pair = {name: every[name] for name in (ours, base)}
            counted.update(_callgrind.per_request_pair(pair, ports, Path(tmp), seconds))
    for ours, base, label in pairs:
        fig = Figure(
            "http",
            f"instructions per request, HttpService / {label} (callgrind)",
            "instructions/request",
            counted[ours],
            counted[base],
            BASELINES[base],
            f"≤ {1 / GOAL:.2f}{TIMES}",
        )
        fig.met = fig.ratio is not None and fig.ratio <= 1 / GOAL
        res.figures.append(fig)
    return counted


MISS = (
    "Requests per second on these two shared cores move with whatever else runs on them: wrk "
    "and the server compete for the same cores, and the per-round ratios in the table range "
    "widely around 1. The A/A control row (uvicorn[standard] against itself, in the same "
    "rounds) shows how far two identical servers drift apart in this run. The instructions each server executes per request (callgrind, the rows "
    "below) do not depend on the load: they are the figure to read for the cost of the front "
    "app. With the access log on at WARNING, `uvicorn.access` has no handlers, so no access "
    "record is built at all, where bare uvicorn at `--log-level warning` calls its logger for "
    "each request."
)
