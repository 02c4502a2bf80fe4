"""`framework new` from a real installation, no editable checkout in sight: build the wheel,
install it into a fresh virtual environment, scaffold from a folder outside the source tree, then
the project's `make test`, and a run that answers its probes and stops cleanly on SIGTERM.

One virtual environment serves the whole test (the project's `make test` installs into it)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from tests._process import REPO, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("FRAMEWORK_TEST_LOWEST") == "1",
        reason="installs the framework's wheel into a fresh environment, where pip resolves the "
        "newest versions the ranges admit: `make test` runs it, not `make test-lowest`",
    ),
]


def _run(args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 600) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], Path]:
    """A fresh venv with the framework installed from a wheel built from this checkout."""
    root = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    source = root / "source"  # pip builds in the tree: build a clean copy, not this checkout
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*_NOT_SOURCE))
    _run(
        [*_PIP, "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", root / "dist", source],
        cwd=root,
        env=env,
    )
    (wheel,) = (root / "dist").glob("framework-*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=root, env=env)
    _run([venv / "bin/python", "-m", "pip", "install", "-q", wheel], cwd=root, env=env)
    return venv, env, wheel


_PIP = (sys.executable, "-m", "pip")
_NOT_SOURCE = (".git", ".venv*", "build", "site", "*.egg-info", "__pycache__", ".*_cache", "*.db")


@pytest.mark.timeout(600)  # pip installs and a generated project's own test run, on a busy machine
def test_new_from_a_wheel_then_make_test_and_run(
    installed: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """The wheel carries the template; the project depends on that wheel, installs, passes its
    tests, serves /readyz and exits 0 on SIGTERM with the database stopped last."""
    venv, env, wheel = installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _run([venv / "bin/framework", "new", "acme-orders", "--no-input"], cwd=elsewhere, env=env)
    project = elsewhere / "acme-orders"
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    assert dependencies[0] == f"framework[standard] @ {wheel.as_uri()}"

    out = _run(["make", "test", f"VENV={venv}"], cwd=project, env=env, timeout=900)
    assert "6 passed" in out

    code, err = _serve_then_sigterm(
        [venv / "bin/framework", "run", "acme_orders.app:App"], cwd=project, env=env
    )
    assert code == 0, err
    stopped = [line for line in err.splitlines() if "stopped in" in line]
    assert "service 'db'" in stopped[-1]


def test_new_from_a_non_editable_folder_install(
    installed: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """`pip install <source folder>` (not editable): the template is found in the installed
    package and the project depends on that folder."""
    venv, env, wheel = installed
    source = wheel.parent.parent / "source"
    _run(
        [venv / "bin/pip", "install", "-q", "--no-deps", "--force-reinstall", source],
        cwd=tmp_path,
        env=env,
    )
    where = _run(
        [venv / "bin/python", "-c", "import framework._cli.template as t; print(t.template_dir())"],
        cwd=tmp_path,
        env=env,
    )
    assert "site-packages/framework/_app_template" in where
    _run([venv / "bin/framework", "new", "shop", "--no-input"], cwd=tmp_path, env=env)
    dependencies = tomllib.loads((tmp_path / "shop/pyproject.toml").read_text())["project"]
    assert dependencies["dependencies"][0] == f"framework[standard] @ {source.as_uri()}"


@pytest.mark.timeout(600)
def test_the_wheel_house_installs_offline_and_serves(
    installed: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """`make wheels`, then what the Dockerfile does on a machine with no index and no build host:
    every wheel of the wheel-house installed with `--no-index --no-deps` into a fresh environment,
    nothing missing (`pip check`), and the project's app run from there, outside its source tree,
    with only its config/ beside it: ready, then exit 0 on SIGTERM."""
    venv, env, _ = installed
    _run([venv / "bin/framework", "new", "house-orders", "--no-input"], cwd=tmp_path, env=env)
    project = tmp_path / "house-orders"
    _run(["make", "wheels", f"VENV={venv}"], cwd=project, env=env, timeout=900)
    wheels = sorted((project / "wheels").glob("*.whl"))
    assert any(w.name.startswith("house_orders-") for w in wheels), wheels
    assert any(w.name.startswith("framework-") for w in wheels), wheels

    offline = {**env, "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": ""}
    house = tmp_path / "image"
    _run([sys.executable, "-m", "venv", house / "venv"], cwd=tmp_path, env=offline)
    pip = [house / "venv/bin/python", "-m", "pip"]
    _run([*pip, "install", "-q", "--no-index", "--no-deps", *wheels], cwd=tmp_path, env=offline)
    _run([*pip, "check"], cwd=tmp_path, env=offline)
    shutil.copytree(project / "config", house / "config")

    code, err = _serve_then_sigterm(
        [house / "venv/bin/framework", "run", "house_orders.app:App", "--env", "production"],
        cwd=house,
        env={**offline, "APP_DATABASE__URL": f"sqlite+aiosqlite:///{house / 'orders.db'}"},
    )
    assert code == 0, err
    assert str(project) not in err


def _container_engine() -> str | None:
    """docker or podman, when one is installed and can build (its daemon answers)."""
    for engine in ("docker", "podman"):
        if shutil.which(engine) is None:
            continue
        try:
            info = subprocess.run([engine, "info"], capture_output=True, timeout=20, check=False)
        except subprocess.TimeoutExpired:
            continue
        if info.returncode == 0:
            return engine
    return None


@pytest.mark.timeout(900)
def test_the_image_builds_from_the_wheel_house(
    installed: tuple[Path, dict[str, str], Path], tmp_path: Path
) -> None:
    """The template's Dockerfile builds from `make wheels` alone (no index inside the build).
    (A project name of its own: the module's environment already has the other tests' projects.)"""
    engine = _container_engine()
    if engine is None:
        pytest.skip("no docker or podman that can build here (not installed, or no daemon)")
    venv, env, _ = installed
    _run([venv / "bin/framework", "new", "image-orders", "--no-input"], cwd=tmp_path, env=env)
    project = tmp_path / "image-orders"
    _run(["make", "wheels", f"VENV={venv}"], cwd=project, env=env, timeout=900)
    tag = f"image-orders-test:{os.getpid()}"
    try:
        _run([engine, "build", "--network=none", "-t", tag, "."], cwd=project, env=env)
        out = _run(
            [engine, "run", "--rm", "--network=none", tag, "framework", "--version"],
            cwd=project,
            env=env,
        )
        assert "framework" in out
    finally:
        subprocess.run([engine, "rmi", "-f", tag], capture_output=True, check=False)


def _serve_then_sigterm(
    command: list[str | Path], cwd: Path, env: dict[str, str]
) -> tuple[int, str]:
    """Run ``command`` (a `framework run`) on a free port, wait until /readyz answers 200, send
    SIGTERM; (exit code, stderr). Killed and failed if not ready within 60 s or not gone in 60."""
    port = free_port()
    run_env = {**env, "APP_HTTP__PORT": str(port), "APP_LIFECYCLE__SHUTDOWN_DELAY": "0.2"}
    proc = subprocess.Popen(
        command, cwd=cwd, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert _wait_ready(port, proc), "the service did not become ready within 60 s"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


def _wait_ready(port: int, proc: subprocess.Popen[str], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False
