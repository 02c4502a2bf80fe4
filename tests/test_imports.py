"""Start fast: the command line's help and ``import framework`` load no application stack.

Each case runs in a fresh interpreter (the console script itself, or ``python -m framework``), with
a ``sitecustomize`` module on ``PYTHONPATH`` that writes the names in ``sys.modules`` to a file when
the process ends. That list is exact where ``-X importtime`` is not: importtime leaves out modules
imported through ``importlib.import_module`` (how the CLI adds ``framework dev``).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

# What an application's stack is made of: none of it may load for the help or for `import framework`.
STACKS = (
    "uvicorn",
    "starlette",
    "fastapi",
    "sqlalchemy",
    "dependency_injector",
    "prometheus_client",
    "cookiecutter",
    "pydantic",
    "pydantic_settings",
    "loguru",
    "anyio",
    "watchfiles",
    "opentelemetry",
    "sentry_sdk",
    "yaml",
    "httpx",
)
# Outside the standard library, the help needs click (the command line) and sniffio (the early
# signal handling, `framework._runtime.signals`, asks it which event loop runs): nothing else.
HELP_NEEDS = {"click", "sniffio"}

SITECUSTOMIZE = """\
import atexit, os, sys

def _write_modules():
    with open(os.environ["FRAMEWORK_TEST_MODULES"], "w") as out:
        out.write("\\n".join(sorted(sys.modules)))

atexit.register(_write_modules)
"""


def loaded(tmp_path: Path, argv: list[str]) -> set[str]:
    """The top-level packages outside the standard library that ``argv`` had loaded at its end."""
    (tmp_path / "sitecustomize.py").write_text(SITECUSTOMIZE)
    listing = tmp_path / "modules.txt"
    env = {k: v for k, v in os.environ.items() if not k.startswith("APP_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    env["FRAMEWORK_TEST_MODULES"] = str(listing)
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert listing.exists(), f"{argv!r} ended without running its exit handlers"
    tops = {name.split(".")[0] for name in listing.read_text().split()}
    own = {"framework", "sitecustomize"}
    return {t for t in tops if not t.startswith("_") and t not in sys.stdlib_module_names} - own


def console_script() -> str:
    script = Path(sys.executable).parent / "framework"
    if not script.exists():
        pytest.skip(f"no console script beside {sys.executable}")
    return str(script)


@pytest.mark.parametrize(
    "args",
    [["--help"], [], ["--version"], ["run", "--help"], ["dev", "--help"], ["new", "--help"]],
    ids=["--help", "bare", "--version", "run --help", "dev --help", "new --help"],
)
def test_the_help_loads_no_application_stack(tmp_path: Path, args: list[str]) -> None:
    """`framework --help` (and each command's help, the version, bare `framework`) loads click and
    sniffio and nothing else outside the standard library: no server, web framework, database,
    container, settings, logging, template engine or file watcher."""
    third_party = loaded(tmp_path, [console_script(), *args])
    assert not third_party & set(STACKS), sorted(third_party & set(STACKS))
    assert third_party == HELP_NEEDS, sorted(third_party)


def test_python_dash_m_help_loads_no_application_stack(tmp_path: Path) -> None:
    """`python -m framework --help` loads the same as the console script: click and sniffio."""
    third_party = loaded(tmp_path, [sys.executable, "-m", "framework", "--help"])
    assert third_party == HELP_NEEDS, sorted(third_party)


@pytest.mark.parametrize("module", ["framework", "framework.services"])
def test_importing_the_package_loads_nothing_outside_the_standard_library(
    tmp_path: Path, module: str
) -> None:
    """`import framework` (and `framework.services`) imports no other package: each public name is
    imported from its module on first use, so FastAPI, SQLAlchemy, prometheus-client, cookiecutter
    and the rest load only for an application that uses them."""
    third_party = loaded(tmp_path, [sys.executable, "-c", f"import {module}"])
    assert third_party == set(), sorted(third_party)
