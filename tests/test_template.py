"""`framework new`: the template renders a project that installs, passes its tests, runs and stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest
import yaml

from framework.template import render
from tests._process import REPO, free_port

pytestmark = pytest.mark.slow


def test_new_renders_a_complete_project(tmp_path: Path) -> None:
    project = render("acme-orders", output_dir=tmp_path, no_input=True)
    assert project == tmp_path / "acme-orders"
    for name in [
        "acme_orders/app.py",
        "acme_orders/container.py",
        "acme_orders/settings.py",
        "config/default.toml",
        "config/production.toml",
        "pyproject.toml",
        "Makefile",
        "README.md",
        "Dockerfile",
        ".dockerignore",
        "tests/test_app.py",
        "deploy/k8s/deployment.yaml",
        "deploy/k8s/service.yaml",
        "deploy/k8s/pdb.yaml",
    ]:
        assert (project / name).is_file(), name
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["dependencies"][0] == f"framework @ {REPO.as_uri()}"
    dockerfile = (project / "Dockerfile").read_text()
    assert "STOPSIGNAL SIGTERM" in dockerfile
    assert "USER 10001" in dockerfile
    assert 'CMD ["framework", "run", "acme_orders.app:App"' in dockerfile


def test_default_toml_has_every_knob(tmp_path: Path) -> None:
    from framework.settings import Settings

    project = render("knobs", output_dir=tmp_path, no_input=True)
    text = (project / "config/default.toml").read_text()
    values = tomllib.loads(text)
    for section in ("lifecycle", "http", "database", "logging"):
        model = type(getattr(Settings(), section))
        for key in model.model_fields:
            assert f"{key} = " in text, f"{section}.{key}"
    assert values["worker"]["interval"] == 5.0
    assert "# [services.<name>]" in text


def test_k8s_manifests_validate_and_the_grace_period_covers_the_budget(tmp_path: Path) -> None:
    import kubernetes_validate

    project = render(
        "kube",
        output_dir=tmp_path,
        no_input=True,
        extra={"shutdown_delay": "7", "shutdown_timeout": "40"},
    )
    for path in sorted((project / "deploy/k8s").glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            kubernetes_validate.validate(document, desired_version="1.30", strict=True)
    deployment = yaml.safe_load((project / "deploy/k8s/deployment.yaml").read_text())
    grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    lifecycle = tomllib.loads((project / "config/default.toml").read_text())["lifecycle"]
    assert lifecycle["shutdown_delay"] == 7
    assert lifecycle["shutdown_timeout"] == 40
    assert grace > lifecycle["shutdown_delay"] + lifecycle["shutdown_timeout"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"


def test_cli_new_refuses_an_existing_directory(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "framework",
            "new",
            "taken",
            "--no-input",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78
    assert "already exists" in result.stderr
    assert "Traceback" not in result.stderr


def test_generated_project_installs_passes_its_tests_runs_and_stops(tmp_path: Path) -> None:
    """In a fresh virtual environment: `make test` of the project, then run, probe, SIGTERM, exit 0."""
    project = render("acme-orders", output_dir=tmp_path, no_input=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    test = subprocess.run(
        ["make", "test", f"PYTHON={sys.executable}"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-3000:]
    assert " passed" in test.stdout

    port = free_port()
    proc = subprocess.Popen(
        [
            str(project / ".venv/bin/framework"),
            "run",
            "acme_orders.app:App",
            "--set",
            f"http.port={port}",
            "--set",
            "lifecycle.shutdown_delay=0.2",
        ],
        cwd=project,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status != 200:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/readyz", timeout=1
                ) as response:
                    status = response.status
            except OSError:
                time.sleep(0.1)
        assert status == 200
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    stopped = [line for line in err.splitlines() if "stopped in" in line]
    assert "service 'db'" in stopped[-1]
