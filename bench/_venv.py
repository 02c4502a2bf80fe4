"""The framework installed as users deploy it: a wheel in its own virtual environment.

Time to ready and import time are measured there, not in the editable checkout: an installed
package has its bytecode compiled at install time (the checkout recompiles every module at each
start wherever ``PYTHONDONTWRITEBYTECODE`` is set), and the environment holds what the app
needs (``framework[standard]`` and the app's own packages), not the development tools.

Two environments, built once under ``build/`` and refreshed with the current code at each run:
``bench-app`` (``framework[standard]``, Starlette) for the Starlette example, and
``bench-fastapi`` (the same and FastAPI) for the FastAPI example.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from bench._common import ROOT

ENVS: dict[str, tuple[str, ...]] = {
    "bench-app": ("starlette",),
    "bench-fastapi": ("starlette", "fastapi"),
}


def _pip(python: Path, *args: str) -> None:
    done = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{done.stderr[-3000:]}")


def installed(name: str) -> Path:
    """The Python of environment ``name``, with the framework as it is now installed in it."""
    home = ROOT / "build" / name
    python = home / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True, timeout=120)
        _pip(python, f"{ROOT}[standard]", *ENVS[name])
    else:  # the current code, as a wheel (the dependencies are there already)
        _pip(python, "--no-deps", "--force-reinstall", str(ROOT))
    return python
