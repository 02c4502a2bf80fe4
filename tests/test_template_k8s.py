"""The template's Kubernetes manifests: valid offline for every Kubernetes version from 1.30 to the
newest the schemas know, production-shaped, and in step with the rendered configuration."""

from __future__ import annotations

import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework._cli.template import render

FIRST = (1, 30)


def versions() -> list[str]:
    """Every minor version kubernetes-validate has schemas for, from 1.30 on."""
    from kubernetes_validate.utils import all_versions

    found = {tuple(int(n) for n in v.split(".")[:2]) for v in all_versions()}
    return [f"{major}.{minor}" for major, minor in sorted(found) if (major, minor) >= FIRST]


def documents(project: Path) -> list[dict[str, Any]]:
    return [
        document
        for path in sorted((project / "deploy/k8s").rglob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
    ]


def by_kind(project: Path) -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in documents(project)}


@pytest.mark.parametrize("database", ["yes", "no"])
def test_manifests_validate_for_every_known_kubernetes_from_1_30(
    tmp_path: Path, database: str
) -> None:
    """Deployment, Service, PodDisruptionBudget and HorizontalPodAutoscaler validate strictly
    (unknown fields refused) against the schemas of 1.30 up to the newest known."""
    import kubernetes_validate

    project = render(
        "kube", output_dir=tmp_path, no_input=True, extra={"include_database": database}
    )
    kinds = by_kind(project)
    assert set(kinds) == {"Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler"}
    known = versions()
    assert known[0] == "1.30" and len(known) >= 2
    for version in known:
        for document in kinds.values():
            kubernetes_validate.validate(document, desired_version=version, strict=True)


def test_deployment_is_production_shaped(tmp_path: Path) -> None:
    """Rolling update without a capacity dip, minReadySeconds, startup probe, spread over nodes
    and zones, requests and limits, non-root with a read-only root filesystem and no escalation;
    probes from the health settings: readiness every health_interval, two failures to act."""
    project = render("kube", output_dir=tmp_path, no_input=True, extra={"include_database": "no"})
    deployment = by_kind(project)["Deployment"]
    spec, pod = deployment["spec"], deployment["spec"]["template"]["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxUnavailable": 0, "maxSurge": 1}
    assert spec["minReadySeconds"] > 0
    assert spec["replicas"] == 2
    assert {c["topologyKey"] for c in pod["topologySpreadConstraints"]} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert pod["securityContext"]["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert set(container["resources"]) == {"requests", "limits"}
    assert {"cpu", "memory"} <= set(container["resources"]["limits"])
    lifecycle = tomllib.loads((project / "config/default.toml").read_text())["lifecycle"]
    readiness = container["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz"
    assert readiness["periodSeconds"] == lifecycle["health_interval"]
    assert readiness["timeoutSeconds"] >= lifecycle["health_timeout"] + 1
    assert readiness["failureThreshold"] >= 2  # one slow round on every pod empties no Service
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= lifecycle["startup_timeout"]
    assert container["imagePullPolicy"] == "IfNotPresent"


def test_the_image_is_tagged_with_the_projects_version(tmp_path: Path) -> None:
    """The Deployment's image is <project>:<version in pyproject.toml>, never :latest: with
    IfNotPresent, a reused tag would neither roll the pods nor replace a node's stale image."""
    project = render("kube", output_dir=tmp_path, no_input=True)
    version = tomllib.loads((project / "pyproject.toml").read_text())["project"]["version"]
    (container,) = by_kind(project)["Deployment"]["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"kube:{version}"
    assert (
        f"docker build -t kube:{version} ." in (project / "deploy/k8s/deployment.yaml").read_text()
    )


@pytest.mark.parametrize("timeout", ["20", "40", "37.5"])
def test_the_grace_period_follows_shutdown_timeout(tmp_path: Path, timeout: str) -> None:
    """terminationGracePeriodSeconds and lifecycle.grace_period are ceil(shutdown_timeout + 2):
    the smallest grace period `framework check` accepts, whatever the delay."""
    project = render(
        "kube",
        output_dir=tmp_path,
        no_input=True,
        extra={"shutdown_delay": "7", "shutdown_timeout": timeout},
    )
    pod = by_kind(project)["Deployment"]["spec"]["template"]["spec"]
    lifecycle = tomllib.loads((project / "config/default.toml").read_text())["lifecycle"]
    assert lifecycle["shutdown_delay"] == 7
    assert lifecycle["shutdown_timeout"] == float(timeout)
    expected = math.ceil(float(timeout) + 2)
    assert pod["terminationGracePeriodSeconds"] == expected
    assert lifecycle["grace_period"] == expected


def test_pod_local_sqlite_runs_one_replica_and_says_why(tmp_path: Path) -> None:
    """With the database, production uses a SQLite file on the pod's volume: the Deployment runs
    one replica, the autoscaler is kept out of deploy/k8s/ itself, and both say why."""
    project = render("kube", output_dir=tmp_path, no_input=True)
    deployment_text = (project / "deploy/k8s/deployment.yaml").read_text()
    deployment = yaml.safe_load(deployment_text)
    assert deployment["spec"]["replicas"] == 1
    assert "ONE replica while the database is the pod-local SQLite file" in deployment_text
    assert not (project / "deploy/k8s/hpa.yaml").exists()
    assert (project / "deploy/k8s/shared-database/hpa.yaml").is_file()
    production = tomllib.loads((project / "config/production.toml").read_text())
    assert production["database"]["url"].startswith("sqlite+aiosqlite:////home/app/data/")
    mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {m["mountPath"] for m in mounts} == {"/tmp", "/home/app/data"}


# -- security lint ---------------------------------------------------------------------------------

CHECKOV = Path(__file__).resolve().parent.parent / ".venv-checkov/bin/checkov"
"""Installed by `make test` (pyproject.toml's `k8s-lint` extra, in an environment of its own)."""

NOT_FOR_A_TEMPLATE = {
    "CKV_K8S_43": "image by digest: a locally built image has no digest until it is pushed",
    "CKV_K8S_15": "imagePullPolicy Always: a versioned tag with IfNotPresent is right, and Always "
    "breaks `kind load` / `minikube image load`",
    "CKV_K8S_21": "the default namespace: the namespace is chosen at apply time (kubectl -n)",
    "CKV2_K8S_6": "a NetworkPolicy: who may call the service is the cluster's choice; one that "
    "lets everyone reach the one port would satisfy the lint and protect nothing",
}
"""The checks the template leaves to the user, and why; every other check must pass."""


@pytest.mark.slow
@pytest.mark.skipif(
    not CHECKOV.exists(), reason="checkov is not installed: `make test` installs it"
)
@pytest.mark.parametrize("database", ["yes", "no"])
def test_manifests_pass_the_security_lint(tmp_path: Path, database: str) -> None:
    """checkov (offline, no downloads) finds nothing in the rendered manifests but the checks a
    template cannot settle (`NOT_FOR_A_TEMPLATE`)."""
    import subprocess

    project = render(
        "kube", output_dir=tmp_path, no_input=True, extra={"include_database": database}
    )
    result = subprocess.run(
        [
            str(CHECKOV),
            *("-d", str(project / "deploy"), "--framework", "kubernetes"),
            *("--skip-download", "--compact", "--quiet"),
            *("--skip-check", ",".join(NOT_FOR_A_TEMPLATE)),
        ],
        capture_output=True,
        text=True,
        timeout=110,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "BC_SKIP_MAPPING": "TRUE"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
