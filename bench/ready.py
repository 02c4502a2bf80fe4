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
- The goal: the template's app (``framework new shop``: FastAPI, the database, the worker),
  ``framework run shop.app:App`` to its first 200 on ``/readyz``, against the same app written
  without the framework (``bench.template_asgi``) on bare uvicorn, to its first 200 on ``/orders``.
- Reported: the Starlette example (``examples/orders``), ``framework run orders.app:App`` to
  ``/readyz``, against ``bench.orders_asgi:orders_app`` (Starlette and SQLAlchemy only: no
  container, no settings class) to ``/orders``, in the environment without FastAPI.
- Start fast (`bench.imports`): ``import framework`` against ``import uvicorn, fastapi`` and
  ``framework --help`` against ``uvicorn --help``, each the wall time of a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from bench import imports
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
from bench.imports import installed_env, third_party

GOAL = 1.2
EXAMPLES = ROOT / "examples"
UVICORN_STANDARD = ("--loop", "auto", "--http", "auto")


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


def template_pair(tmp: Path) -> tuple[Server, Server]:
    """The template's app, rendered with its defaults (FastAPI, the database) under ``tmp``, and
    the same app on bare uvicorn (`bench.template_asgi`), both on one SQLite file per run."""
    from framework._cli.template import render

    project = render("shop", output_dir=tmp, no_input=True, extra={})
    url = "sqlite+aiosqlite:///{db}"
    return (
        _ours("shop.app:App", project, url),
        _bare("bench.template_asgi:app", "/orders", ("APP_DATABASE_URL", url)),
    )


def _pair(python: Path, pair: tuple[Server, Server], runs: int, tmp: Path) -> Times:
    """Ours and the bare server, alternating which goes first; one warm-up of each, not kept."""
    ours, bare = pair
    time_to_ready(python, ours, tmp)
    time_to_ready(python, bare, tmp)
    out: Times = ([], [])
    for r in range(runs):
        order = ((0, ours), (1, bare)) if r % 2 == 0 else ((1, bare), (0, ours))
        for i, server in order:
            out[i].append(time_to_ready(python, server, tmp))
    return out


Times = tuple[list[float], list[float]]


def _ratio(a: list[float], b: list[float]) -> float:
    return median([x / y for x, y in zip(a, b, strict=True)])


def _ready_figure(name: str, pair: Times, baseline: str, goal: float | None) -> Figure:
    fig = Figure(
        "ready",
        f"time to ready: `framework run` of {name} to first 200 on /readyz",
        "s",
        median(pair[0]),
        median(pair[1]),
        baseline,
        f"≤ {goal}{TIMES}" if goal else "(reported)",
        ratio=_ratio(*pair),
        runs=pair[0],
        baseline_runs=pair[1],
        miss_note=MISS_READY if goal else "",
    )
    if goal is not None:
        fig.met = fig.ratio is not None and fig.ratio <= goal
    return fig


def run(quick: bool) -> Result:
    runs = 3 if quick else 9
    app_python, fastapi_python = installed("bench-app"), installed("bench-fastapi")
    with workdir("ready") as tmp:
        fastapi = _pair(fastapi_python, PAIRS["fastapi"], runs, tmp)
        template = _pair(fastapi_python, template_pair(tmp), runs, tmp)
        orders = _pair(app_python, PAIRS["orders"], runs, tmp)
    start_fast, times = imports.figures(fastapi_python, 3 if quick else 10)
    # the runner imported by name: its own line and its imports show (`Application` is lazy)
    tree = imports.import_times(fastapi_python, "import framework._runtime.application")
    res = Result()
    res.figures += [
        _ready_figure(
            "the FastAPI example",
            fastapi,
            "the same app, canonical FastAPI + dependency-injector, on bare uvicorn[standard]",
            GOAL,
        ),
        _ready_figure(
            "the template's app (`framework new`: FastAPI, database, worker)",
            template,
            "the same app without the framework (`bench.template_asgi`) on bare uvicorn[standard]",
            GOAL,
        ),
        _ready_figure(
            "the Starlette example (orders)",
            orders,
            "Starlette + SQLAlchemy on bare uvicorn[standard] (no container, no settings class)",
            None,
        ),
        *start_fast,
    ]
    pairs = {"fastapi": fastapi, "template": template, "orders": orders}
    res.details.append(_details(runs, pairs, tree))
    res.notes += [NOTE, NOTE_START_FAST]
    res.data = {**pairs, "start_fast_s": times}
    return res


def _details(runs: int, pairs: dict[str, Times], tree: dict[str, list[tuple[int, str]]]) -> str:
    outside = third_party(tree)
    top = ", ".join(f"`{name}` {us / 1000:.0f} ms" for us, name in outside[:6])
    rows = [
        "| app | `framework run`, to /readyz | bare uvicorn[standard] | ratio (median of runs) |",
        "|---|---|---|---|",
    ]
    for label, key in (
        ("FastAPI example (`examples/fastapi`) / `bench.todo_asgi`", "fastapi"),
        ("the template's app (`framework new shop`) / `bench.template_asgi`", "template"),
        ("Starlette example (`examples/orders`) / `bench.orders_asgi`", "orders"),
    ):
        ours, bare = pairs[key]
        rows.append(
            f"| {label} | {median(ours) * 1000:.0f} ms | {median(bare) * 1000:.0f} ms "
            f"| {_ratio(ours, bare):.2f} |"
        )
    return (
        f"**Time to ready** ({runs} runs of each, alternating, after one warm-up; the framework "
        "installed from its wheel with `[standard]`). What `framework`'s modules import from other "
        f"packages for `from framework import Application`, largest first (one run, cumulative): "
        f"{top}.\n\n" + "\n".join(rows)
    )


NOTE_START_FAST = (
    "Start fast: `import framework` imports each public name from its module on first use, so "
    "its row is the interpreter's start and the package's `__init__`; the reported row "
    "`from framework import Application` is what an application pays for the runner "
    "(dependency-injector, whose wiring module imports FastAPI when it is installed, and "
    "pydantic-settings). `framework --help` imports click and nothing of the application's stack."
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
