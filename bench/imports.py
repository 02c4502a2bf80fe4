"""Start fast: ``import framework`` and ``framework --help`` against uvicorn's, installed (part of ``ready``).

Each run is a fresh interpreter of the environment where the framework is installed from its wheel
with FastAPI (`bench._venv`, ``bench-fastapi``), bytecode caching on; the figure is the wall time of
the whole process, from its spawn to its exit, so the interpreter's own start is on both sides. The
two sides alternate which goes first, after one warm-up of each (not kept).

- Goal: ``python -c "import framework"`` at most 1.1 times ``python -c "import uvicorn, fastapi"``.
- Goal: the ``framework --help`` console script at most 1.2 times ``uvicorn --help``.
- Reported: ``from framework import Application`` against ``import uvicorn, fastapi``: what an
  application pays once it uses the runner (dependency-injector, pydantic-settings and what they
  import), where ``import framework`` alone imports each public name only on first use.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

from bench._common import ROOT, TIMES, Figure, median

IMPORT_GOAL = 1.1
HELP_GOAL = 1.2
EXAMPLES = ROOT / "examples"
_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def installed_env(**extra: str) -> dict[str, str]:
    """A deployment's environment: no APP_* settings, nothing on PYTHONPATH that could shadow the
    installed framework, and bytecode caching on (as Python's default)."""
    drop = ("PYTHONPATH", "PYTHONDONTWRITEBYTECODE")
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_") and k not in drop}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def import_times(python: Path, statement: str) -> dict[str, list[tuple[int, str]]]:
    """Each import's children (cumulative µs, name) when ``statement`` runs in a fresh interpreter
    (``-X importtime``; it leaves out what ``importlib.import_module`` imports itself, not what
    that imports)."""
    err = subprocess.run(
        [str(python), "-X", "importtime", "-c", statement],
        env=installed_env(),
        cwd=EXAMPLES,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stderr
    children: dict[str, list[tuple[int, str]]] = {}
    pending: dict[int, list[tuple[int, str]]] = {}
    for line in err.splitlines():  # children are printed before their parent
        m = _LINE.match(line)
        if m is None:
            continue
        cumulative, depth, name = int(m.group(2)), (len(m.group(3)) - 1) // 2, m.group(4)
        children[name] = sorted(pending.pop(depth + 1, []), reverse=True)
        pending.setdefault(depth, []).append((cumulative, name))
    if not children:
        raise RuntimeError(f"no import times for {statement!r} in:\n{err[-2000:]}")
    return children


def third_party(children: dict[str, list[tuple[int, str]]]) -> list[tuple[int, str]]:
    """What the framework's own modules import from other packages (not the standard library),
    largest first."""
    out = [
        (us, name)
        for parent, kids in children.items()
        if parent.split(".")[0] == "framework"
        for us, name in kids
        if name.split(".")[0] not in sys.stdlib_module_names | {"framework"}
    ]
    return sorted(out, reverse=True)


def process_time(argv: list[str]) -> float:
    """Seconds from spawning ``argv`` to its exit (it must exit 0)."""
    began = time.perf_counter()
    subprocess.run(
        argv,
        env=installed_env(),
        cwd=EXAMPLES,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        timeout=60,
        check=True,
    )
    return time.perf_counter() - began


def alternate(cases: dict[str, list[str]], runs: int) -> dict[str, list[float]]:
    """Each case ``runs`` times, the order reversed every other run, after one warm-up of each."""
    for argv in cases.values():
        process_time(argv)
    out: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for r in range(runs):
        for name in names if r % 2 == 0 else names[::-1]:
            out[name].append(process_time(cases[name]))
    return out


def per_run_ratio(a: list[float], b: list[float]) -> float:
    return median([x / y for x, y in zip(a, b, strict=True)])


def figures(python: Path, runs: int) -> tuple[list[Figure], dict[str, list[float]]]:
    """The import and ``--help`` rows, and every run's seconds by case."""
    bin_dir = python.parent
    times = alternate(
        {
            "import framework": [str(python), "-c", "import framework"],
            "import uvicorn, fastapi": [str(python), "-c", "import uvicorn, fastapi"],
            "from framework import Application": [
                str(python),
                "-c",
                "from framework import Application",
            ],
            "framework --help": [str(bin_dir / "framework"), "--help"],
            "uvicorn --help": [str(bin_dir / "uvicorn"), "--help"],
        },
        runs,
    )
    rows = (
        ("import framework", "import uvicorn, fastapi", IMPORT_GOAL),
        ("framework --help", "uvicorn --help", HELP_GOAL),
        ("from framework import Application", "import uvicorn, fastapi", None),
    )
    out = []
    for ours, base, goal in rows:
        fig = Figure(
            "ready",
            f"start fast: `{ours}`, installed, fresh interpreter to exit",
            "s",
            median(times[ours]),
            median(times[base]),
            f"`{base}`",
            f"≤ {goal}{TIMES}" if goal else "(reported)",
            ratio=per_run_ratio(times[ours], times[base]),
            runs=times[ours],
            baseline_runs=times[base],
            miss_note=MISS if goal else "",
        )
        if goal is not None:
            fig.met = fig.ratio is not None and fig.ratio <= goal
        out.append(fig)
    return out, times


MISS = (
    "`import framework` imports each public name on first use and the command line imports a "
    "command's modules only when it runs: a miss means a module-level import crept back into the "
    "package's `__init__` or the CLI (tests/test_imports.py names which)."
)
