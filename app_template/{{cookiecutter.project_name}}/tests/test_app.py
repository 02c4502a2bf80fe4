"""The service, started for real in-process by the framework's testing kit."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from framework.testing import run_app, simulate_termination
from {{ cookiecutter.package_name }}.app import App

{% if cookiecutter.include_database == "yes" %}
async def test_create_and_list_orders(framework_app, framework_client):
    created = await framework_client.post("/orders", json={"item": "book", "quantity": 2})
    assert created.status_code == 201
    listed = await framework_client.get("/orders")
    assert [(o["item"], o["quantity"]) for o in listed.json()] == [("book", 2)]


async def test_bad_order_is_rejected(framework_client):
    response = await framework_client.post("/orders", json={"quantity": 2})
    assert response.status_code == 422


@pytest.mark.anyio
async def test_ready_then_stopped_in_reverse_order(framework_overrides):
    async with run_app(App, overrides=framework_overrides) as harness:
        assert (await harness.client().get("/readyz")).status_code == 200
        assert (await harness.client().get("/livez")).status_code == 200
    stopped = harness.events.stopped()
    assert stopped[-1] == "db"  # the database outlives everything that uses it
    assert set(stopped) == {"http", "worker", "db"}
{% else %}
async def test_hello(framework_client):
    response = await framework_client.get("/hello")
    assert response.json()["hello"] == "world"


async def test_ready(framework_client):
    assert (await framework_client.get("/readyz")).status_code == 200
{% endif %}

def test_start_order():
    """`framework check` creates no service: it checks the settings and the dependency graph,
    then prints the start order, one line per layer."""
    check = subprocess.run(
        [sys.executable, "-m", "framework", "check", "{{ cookiecutter.package_name }}.app:App"],
        cwd=Path(__file__).resolve().parent.parent,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr
{% if cookiecutter.include_database == "yes" %}    assert check.stdout.splitlines() == ["0: db", "1: http worker"]
{% else %}    assert check.stdout.splitlines() == ["0: http worker"]
{% endif %}


ROOT = Path(__file__).resolve().parent.parent
ENDPOINT_LAG = 2.0
"""Seconds your cluster keeps routing new requests to a pod after SIGTERM (endpoints, kube-proxy,
the load balancer): measure it on your cluster and declare it here. lifecycle.shutdown_delay must
cover it."""


def grace_period() -> int:
    """terminationGracePeriodSeconds, as deploy/k8s/deployment.yaml sets it."""
    deployment = yaml.safe_load((ROOT / "deploy/k8s/deployment.yaml").read_text())
    return deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]


def test_the_grace_period_covers_the_shutdown():
    """`framework check --grace-period` with the manifest's grace period: fails (exit 78) once
    lifecycle.shutdown_timeout + 2 s no longer fits in it."""
    check = subprocess.run(
        [sys.executable, "-m", "framework", "check", "{{ cookiecutter.package_name }}.app:App",
         "--env", "production", "--strict", "--grace-period", str(grace_period())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert check.returncode == 0, check.stderr


def test_a_pod_deletion_loses_no_request(tmp_path, monkeypatch):
    """Kubernetes deletes the pod: SIGTERM, new requests still routed to it for ENDPOINT_LAG
    seconds, SIGKILL at the manifest's grace period. Every request is answered and the process
    exits on its own; fails when lifecycle.shutdown_delay drops below ENDPOINT_LAG."""
    monkeypatch.chdir(ROOT)
    overrides = {"logging.level": "WARNING"}
{%- if cookiecutter.include_database == "yes" %}
    overrides["database.url"] = f"sqlite+aiosqlite:///{tmp_path}/simulated.db"
{%- endif %}
    report = simulate_termination(
        "{{ cookiecutter.package_name }}.app:App",
        overrides=overrides,
        endpoint_lag=ENDPOINT_LAG,
        grace=grace_period(),
    )
    assert report.ok, report.text()
