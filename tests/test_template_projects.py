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


@pytest.mark.parametrize(
    ("setting", "edited", "test", "says"),
    [
        (
            "shutdown_delay = 5.0",
            "shutdown_delay = 1.0",
            "test_a_pod_deletion_loses_no_request",
            "x connection refused",
        ),
        (
            "shutdown_timeout = 20.0",
            "shutdown_timeout = 21.0",
            "test_the_grace_period_covers_the_shutdown",
            "set the grace period to at least 23 s",
        ),
    ],
    ids=["delay-below-the-endpoint-lag", "timeout-past-the-grace-period"],
)
def test_generated_tests_catch_a_setting_that_breaks_a_pod_deletion(
    tmp_path: Path, setting: str, edited: str, test: str, says: str
) -> None:
    """The project's own tests fail, naming why, once config/default.toml drops shutdown_delay
    (1 s) below the declared ENDPOINT_LAG (2 s), or raises shutdown_timeout (21 s) so that
    21 + 2 s no longer fits in the manifest's terminationGracePeriodSeconds (22 s)."""
    project = render("shop", output_dir=tmp_path, no_input=True, extra={"include_database": "no"})
    config = project / "config/default.toml"
    text = config.read_text()
    assert text.count(setting) == 1
    config.write_text(text.replace(setting, edited))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project), str(REPO)])}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "tests/test_app.py", "-k", test],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = tests.stdout + tests.stderr
    assert tests.returncode == 1, out[-3000:]
    assert f"FAILED tests/test_app.py::{test}" in tests.stdout, out[-3000:]
    assert "1 failed" in tests.stdout and says in tests.stdout, out[-3000:]
