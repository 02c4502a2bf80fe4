"""Secrets never leak; health and metrics reveal no configuration; bad targets never crash."""

from __future__ import annotations

import contextlib
import importlib.util
import signal
import urllib.request
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from framework.cli import load_target
from framework.errors import TargetError
from tests._process import free_port, run_cli, spawn, wait_for

PLANTED = "pl4nted-S3CRET-value"


def get(url: str) -> str:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())
    except urllib.error.HTTPError as exc:
        return str(exc.read().decode())


@pytest.mark.slow
def test_a_planted_secret_appears_in_no_output(tmp_path: Path) -> None:
    """SecretStr from the environment: not in logs, report, config show, check, /readyz, /metrics."""
    port = free_port()
    journal, log, report = tmp_path / "journal.txt", tmp_path / "app.log", tmp_path / "report.json"
    env = {"APP_BEHAVIOUR__API_KEY": PLANTED}
    sets = [
        f'behaviour.journal="{journal}"',
        f"http.port={port}",
        "http.readyz_details=true",
        "http.metrics_path='/metrics'",
        f"logging.file='{log}'",
        "logging.level='DEBUG'",
        "database.echo=true",
    ]
    args = ["run", "tests.sample_apps:WebApp", "--report", str(report)]
    for s in sets:
        args += ["--set", s]
    proc = spawn(tmp_path, *args, env=env)
    try:
        wait_for(journal, "app ready", timeout=30)
        readyz = get(f"http://127.0.0.1:{port}/readyz")
        metrics = get(f"http://127.0.0.1:{port}/metrics")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert '"worker"' in readyz
    assert "http_requests" in metrics or "requests" in metrics
    shown = run_cli(tmp_path, "config", "show", "tests.sample_apps:WebApp", env=env)
    shown_json = run_cli(
        tmp_path, "config", "show", "tests.sample_apps:WebApp", "--format", "json", env=env
    )
    check = run_cli(tmp_path, "check", "tests.sample_apps:WebApp", env=env)
    outputs = {
        "stdout": out,
        "stderr": err,
        "log file": log.read_text(encoding="utf-8"),
        "report": report.read_text(encoding="utf-8"),
        "/readyz": readyz,
        "/metrics": metrics,
        "config show": shown.stdout + shown.stderr,
        "config show json": shown_json.stdout + shown_json.stderr,
        "check": check.stdout + check.stderr,
    }
    for where, text in outputs.items():
        assert PLANTED not in text, where
    # the probes and metrics reveal no configuration either
    for where in ("/readyz", "/metrics"):
        assert "sqlite" not in outputs[where]
        assert "app.db" not in outputs[where]
        assert str(port) not in outputs[where]


@pytest.mark.slow
def test_a_password_in_a_database_url_appears_in_no_output(tmp_path: Path) -> None:
    """A start that fails on a URL with a password: the error names the URL, masked."""
    url = f"postgresql+asyncpg://app:{PLANTED}@127.0.0.1:{free_port()}/orders"
    log = tmp_path / "app.log"
    run = run_cli(
        tmp_path,
        "run",
        "tests.sample_apps:WebApp",
        "--set",
        f"logging.file='{log}'",
        "--set",
        "http.port=0",
        env={"APP_DATABASE__URL": url},
    )
    assert run.returncode == 1
    assert "app:***@127.0.0.1" in run.stderr
    shown = run_cli(
        tmp_path, "config", "show", "tests.sample_apps:WebApp", env={"APP_DATABASE__URL": url}
    )
    bad = run_cli(
        tmp_path,
        "check",
        "tests.sample_apps:WebApp",
        "--set",
        f'database.pool_size="{PLANTED}"',
        env={"APP_DATABASE__URL": url},
    )
    assert bad.returncode == 78
    for where, text in {
        "run": run.stdout + run.stderr,
        "log": log.read_text(encoding="utf-8"),
        "config show": shown.stdout,
        "error": bad.stderr,
    }.items():
        assert PLANTED not in text, where


safe_names = st.text(alphabet=st.sampled_from("abcxyz_.:019 -/\\é"), min_size=0, max_size=30)


@settings(max_examples=300, deadline=None)
@given(spec=safe_names)
def test_fuzzed_targets_are_always_a_target_error(spec: str) -> None:
    module = spec.partition(":")[0]
    top = module.split(".")[0]
    if top and top.isidentifier():
        with contextlib.suppress(ValueError, ImportError):
            # never import a real module just because the fuzzer named it
            assume(importlib.util.find_spec(top) is None)
    with pytest.raises(TargetError):
        load_target(spec)
