"""6. Time to ready and import time, with the framework installed as users deploy it.

Both sides run from a virtual environment where the framework is installed from its wheel
(`bench._venv`), never from the editable checkout, and both are served on uvicorn's defaults as
``uvicorn[standard]`` installs them (uvloop, httptools). Each server is polled every 5 ms from
its spawn to its first 200.

- The goal: the FastAPI example (``examples/fastapi``: FastAPI, dependency-injector, SQLAlchemy),
  ``framework run todo.application:App`` to its first 200 on ``/readyz``, against the same app
  written the canonical way without the framework (``bench.todo_asgi``: the same libraries, a
  pydantic-settings class, a container wired to the endpoints, the schema created in the lifespan)
  on bare uvicorn, to its first 200 on ``/tasks``.
- Reported: the Starlette example (``examples/orders``), ``framework run orders.app:App`` to
  ``/readyz``, against ``bench.orders_asgi:orders_app`` (Starlette and SQLAlchemy only: no
  container, no settings class) to ``/orders``; and ``import framework`` against ``import
  uvicorn`` (cumulative, ``-X importtime``), both in the environment without FastAPI.
"""

from __future__ import annotations

import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench._common import (
    ROOT,
    TIMES,
    Figure,
    Result,
    free_port,
    median,
    stop_process,
    wait_status,
    workdir,
)
from bench._venv import installed

GOAL = 1.2
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
EXAMPLES = ROOT / "examples"
UVICORN_STANDARD = ("--loop", "auto", "--http", "auto")


def installed_env(**extra: str) -> dict[str, str]:
    """A deployment's environment: no APP_* settings, nothing on PYTHONPATH that could shadow the
    installed framework, and bytecode caching on (as Python's default)."""
    drop = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_") and k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def import_times(python: Path, module: str) -> tuple[int, dict[str, list[tuple[int, str]]]]:
    """Cumulative µs of importing ``module`` in a fresh interpreter, and each import's children."""
    err = subprocess.run(
        [str(python), "-X", "importtime", "-c", f"import {module}"],
        env=installed_env(),
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stderr
    total = 0
    children: dict[str, list[tuple[int, str]]] = {}
    pending: dict[int, list[tuple[int, str]]] = {}
    for line in err.splitlines():  # children are printed before their parent
        m = _LINE.match(line)
        if m is None:
            continue
        cumulative, depth, name = int(m.group(2)), (len(m.group(3)) - 1) // 2, m.group(4)
        children[name] = sorted(pending.pop(depth + 1, []), reverse=True)
        pending.setdefault(depth, []).append((cumulative, name))
        if depth == 0 and name == module:
            total = cumulative
    if not total:
        raise RuntimeError(f"no import time for {module!r} in:\n{err[-2000:]}")
    return total, children


def third_party(children: dict[str, list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """What the framework's own modules import from elsewhere, largest first."""
    out = [
        (us, name)
        for parent, kids in children.items()
        if parent.split(".")[0] == "framework"
        for us, name in kids
        if name.split(".")[0] != "framework"
    ]
    return sorted(out, reverse=True)


@dataclass(frozen=True)
class Server:
    """How to start one side and where it answers 200 once ready."""

    args: tuple[str, ...]  # after ``python -m``; {port} and {db} are filled in
    cwd: Path
    path: str
    env: tuple[tuple[str, str], ...] = ()


def _ours(target: str, cwd: Path, url: str) -> Server:
    sets = ("http.port={port}", f"database.url={url}", "lifecycle.shutdown_delay=0")
    args = ("framework", "run", target, *(a for s in sets for a in ("--set", s)))
    return Server(args, cwd, "/readyz")


def _bare(target: str, path: str, *env: tuple[str, str]) -> Server:
    args = ("uvicorn", target, "--host", "127.0.0.1", "--port", "{port}", *UVICORN_STANDARD)
    return Server(args, ROOT, path, env)


PAIRS: dict[str, tuple[Server, Server]] = {
    "fastapi": (
        _ours("todo.application:App", EXAMPLES / "fastapi", "sqlite:///{db}"),
        _bare(
            "bench.todo_asgi:app",
            "/tasks",
            ("PYTHONPATH", str(EXAMPLES / "fastapi")),
            ("TODO_DATABASE_URL", "sqlite:///{db}"),
        ),
    ),
    "orders": (
        _ours("orders.app:App", EXAMPLES, "sqlite+aiosqlite:///{db}"),
        _bare(
            "bench.orders_asgi:orders_app", "/orders", ("BENCH_DB_URL", "sqlite+aiosqlite:///{db}")
        ),
    ),
}


def time_to_ready(python: Path, server: Server, tmp: Path) -> float:
    port, db = str(free_port()), str(tmp / f"ready-{time.monotonic_ns()}.db")
    args = [a.format(port=port, db=db) for a in server.args]
    env = installed_env(**{k: v.format(port=port, db=db) for k, v in server.env})
    with (tmp / "server.log").open("ab") as log:
        began = time.monotonic()
        proc = subprocess.Popen(
            [str(python), "-m", *args],
            cwd=server.cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        ready = wait_status(proc, int(port), server.path, timeout=30)
    finally:
        stop_process(proc)
    return ready - began


def _pair(python: Path, name: str, runs: int, tmp: Path) -> tuple[list[float], list[float]]:
    """Ours and the bare server, alternating which goes first; one warm-up of each, not kept."""
    ours, bare = PAIRS[name]
    time_to_ready(python, ours, tmp)
    time_to_ready(python, bare, tmp)
    out: tuple[list[float], list[float]] = ([], [])
    for r in range(runs):
        order = ((0, ours), (1, bare)) if r % 2 == 0 else ((1, bare), (0, ours))
        for i, server in order:
            out[i].append(time_to_ready(python, server, tmp))
    return out


def _ratio(a: list[float], b: list[float]) -> float:
    return median([x / y for x, y in zip(a, b, strict=True)])


def run(quick: bool) -> Result:
    runs = 3 if quick else 9
    app_python, fastapi_python = installed("bench-app"), installed("bench-fastapi")
    imp: dict[str, list[int]] = {"framework": [], "uvicorn": []}
    tree: dict[str, list[tuple[int, str]]] = {}
    with workdir("ready") as tmp:
        fastapi = _pair(fastapi_python, "fastapi", runs, tmp)
        orders = _pair(app_python, "orders", runs, tmp)
    for r in range(runs):
        for module in ("framework", "uvicorn") if r % 2 == 0 else ("uvicorn", "framework"):
            total, children = import_times(app_python, module)
            imp[module].append(total)
            if module == "framework" and not tree:
                tree = children
    res = Result()
    fig = Figure(
        "ready",
        "time to ready: `framework run` of the FastAPI example to first 200 on /readyz",
        "s",
        median(fastapi[0]),
        median(fastapi[1]),
        "the same app, canonical FastAPI + dependency-injector, on bare uvicorn[standard]",
        f"≤ {GOAL}{TIMES}",
        ratio=_ratio(*fastapi),
        runs=fastapi[0],
        baseline_runs=fastapi[1],
        miss_note=MISS_READY,
    )
    fig.met = fig.ratio is not None and fig.ratio <= GOAL
    res.figures.append(fig)
    res.figures.append(
        Figure(
            "ready",
            "time to ready: `framework run` of the Starlette example (orders) to first 200 on /readyz",
            "s",
            median(orders[0]),
            median(orders[1]),
            "Starlette + SQLAlchemy on bare uvicorn[standard] (no container, no settings class)",
            "(reported)",
            ratio=_ratio(*orders),
            runs=orders[0],
            baseline_runs=orders[1],
        )
    )
    floats = {k: [float(x) for x in v] for k, v in imp.items()}
    res.figures.append(
        Figure(
            "ready",
            "import time: `import framework`, installed (cumulative, -X importtime)",
            "µs",
            median(floats["framework"]),
            median(floats["uvicorn"]),
            "`import uvicorn`",
            "(reported)",
            ratio=_ratio(floats["framework"], floats["uvicorn"]),
            runs=floats["framework"],
            baseline_runs=floats["uvicorn"],
        )
    )
    res.details.append(_details(runs, fastapi, orders, tree))
    res.notes.append(NOTE)
    res.data = {"fastapi": fastapi, "orders": orders, "import_us": imp}
    return res


def _details(
    runs: int,
    fastapi: tuple[list[float], list[float]],
    orders: tuple[list[float], list[float]],
    tree: dict[str, list[tuple[int, str]]],
) -> str:
    outside = third_party(tree)
    top = ", ".join(f"`{name}` {us / 1000:.0f} ms" for us, name in outside[:6])
    rows = [
        "| app | `framework run`, to /readyz | bare uvicorn[standard] | ratio (median of runs) |",
        "|---|---|---|---|",
    ]
    for label, (ours, bare) in (
        ("FastAPI example (`examples/fastapi`) / `bench.todo_asgi`", fastapi),
        ("Starlette example (`examples/orders`) / `bench.orders_asgi`", orders),
    ):
        rows.append(
            f"| {label} | {median(ours) * 1000:.0f} ms | {median(bare) * 1000:.0f} ms "
            f"| {_ratio(ours, bare):.2f} |"
        )
    return (
        f"**Time to ready** ({runs} runs of each, alternating, after one warm-up; the framework "
        "installed from its wheel with `[standard]`). What `framework`'s modules import from other "
        f"packages, largest first (one run, cumulative): {top}.\n\n" + "\n".join(rows)
    )


NOTE = (
    "Time to ready: both sides of a pair import the same libraries and do the same work before "
    "answering (open the SQLite database, create the schema); the framework's side also imports "
    "`framework` and loguru, reads the configuration files, builds and checks the container, "
    "finds the dependency graph, sets up logging and starts the services in order. The Starlette "
    "pair's baseline imports neither pydantic nor dependency-injector, which the framework needs "
    "for its settings and containers: that row shows their cost, it is not the goal."
)

MISS_READY = (
    "The framework's own share is its modules' import and the work before the first request: "
    "reading the configuration, building the container, finding the graph, logging set-up."
)
