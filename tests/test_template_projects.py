"""Generated projects pass their own tests out of the box, for every web layer, with and without
the database. Run with this checkout's environment (no install): the wheel test installs one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from framework._cli.template import render
from tests._process import REPO, free_port

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


def test_the_telemetry_and_sentry_options_work_when_switched_on(tmp_path: Path) -> None:
    """The container's commented-out telemetry and Sentry lines, switched on as its comment says
    (with the short stop bounds it recommends): `check --strict` orders them before the database
    and the HTTP service (no wiring written) and the budget still fits the manifest's grace period;
    the app serves, and on SIGTERM stops them last and exits 0 (nothing is exported: the OTLP
    endpoint is a closed loopback port, Sentry has no DSN)."""
    project = render("traced", output_dir=tmp_path, no_input=True)
    container = project / "traced" / "container.py"
    text = container.read_text(encoding="utf-8")
    text = text.replace(
        "from framework.services import HttpService\n",
        "from framework.services import HttpService, SentryService, TelemetryService\n",
    )
    text = text.replace("    # telemetry = providers", "    telemetry = providers")
    text = text.replace("    # sentry = providers", "    sentry = providers")
    container.write_text(text, encoding="utf-8")
    with (project / "config/default.toml").open("a", encoding="utf-8") as config:
        config.write("\n[services.telemetry]\nstop_timeout = 1.0\n")
        config.write("\n[services.sentry]\nstop_timeout = 1.0\n")
    with socket.socket() as closed:  # bound and closed again: nothing listens there
        closed.bind(("127.0.0.1", 0))
        otlp = closed.getsockname()[1]
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(project), str(REPO)]),
        "APP_TELEMETRY__ENDPOINT": f"http://127.0.0.1:{otlp}",
        "APP_HTTP__PORT": str(port),
        "APP_LIFECYCLE__SHUTDOWN_DELAY": "0.2",
    }
    grace = "22"  # the manifest's terminationGracePeriodSeconds for shutdown_timeout 20
    check = subprocess.run(
        [
            *(sys.executable, "-m", "framework", "check", "traced.app:App"),
            *("--env", "production", "--strict", "--grace-period", grace),
        ],
        cwd=project,
        env={**env, "APP_LIFECYCLE__SHUTDOWN_DELAY": "5"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stderr
    assert check.stdout.splitlines()[0] == "0: sentry telemetry", check.stdout
    proc = subprocess.Popen(
        [sys.executable, "-m", "framework", "run", "traced.app:App"],
        cwd=project,
        env={**env, "APP_DATABASE__URL": f"sqlite+aiosqlite:///{tmp_path / 'orders.db'}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not _ready(port):
            assert proc.poll() is None and time.monotonic() < deadline, "never ready"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    stopped = [line for line in err.splitlines() if "stopped in" in line]
    assert {"sentry", "telemetry"} == {_service(line) for line in stopped[-2:]}, stopped


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _service(line: str) -> str:
    return line.split("service '", 1)[1].split("'", 1)[0]
