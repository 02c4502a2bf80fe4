"""Generated projects pass their own tests out of the box, for every web layer, with and without
the database. Run with this checkout's environment (no install): the wheel test installs one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from framework._cli.template import render
from tests._process import REPO

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("web", ["fastapi", "starlette"])
@pytest.mark.parametrize("database", ["yes", "no"])
def test_generated_tests_and_check_pass(tmp_path: Path, web: str, database: str) -> None:
    """`framework check --env production --strict` and the project's pytest both succeed."""
    name = f"shop-{web}-{database}"
    project = render(
        name, output_dir=tmp_path, no_input=True, extra={"web": web, "include_database": database}
    )
    package = name.replace("-", "_")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(REPO)])}
    check = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            "check",
            f"{package}.app:App",
            "--env",
            "production",
            "--strict",
        ],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    layers = check.stdout.splitlines()
    assert layers == (["0: db", "1: http worker"] if database == "yes" else ["0: http worker"])
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-3000:]
    assert ("6 passed" if database == "yes" else "5 passed") in tests.stdout
