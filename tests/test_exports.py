"""The public surface: what `framework` exports is deliberate, importable, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import framework
import framework.services
import framework.testing
from framework import ExitCode

PUBLIC = {
    "framework": {
        "Application",
        "Bound",
        "ConfigError",
        "DependencyCycleError",
        "Event",
        "EventHandler",
        "ExitCode",
        "FrameworkError",
        "LifecycleSettings",
        "Outcome",
        "Phase",
        "ProcessSettings",
        "RollingBack",
        "Service",
        "ServiceCrashed",
        "ServiceError",
        "ServiceHealthChanged",
        "ServiceRestarted",
        "ServiceRestarting",
        "ServiceSettings",
        "ServiceStartFailed",
        "ServiceStarted",
        "ServiceStarting",
        "ServiceState",
        "ServiceStopFailed",
        "ServiceStopped",
        "ServiceStopping",
        "Settings",
        "ShutdownError",
        "ShutdownFinished",
        "ShutdownStarted",
        "SpawnedTaskFailed",
        "StartupError",
        "StartupFinished",
    },
    "framework.services": {
        "DatabaseService",
        "DatabaseSettings",
        "HttpService",
        "HttpSettings",
        "LoggingSettings",
        "SentryService",
        "SentrySettings",
        "TelemetryService",
        "TelemetrySettings",
    },
    "framework.testing": {
        "EventSpy",
        "Harness",
        "LeakError",
        "run_app",
        "run_app_sync",
        "simulate_termination",
    },
}


def test_the_public_names_are_the_contracts() -> None:
    """The public API is exactly the names in the ``__all__`` tuples of the three public modules."""
    for module in (framework, framework.services, framework.testing):
        assert isinstance(module.__all__, tuple), module.__name__
        assert set(module.__all__) == PUBLIC[module.__name__], module.__name__


def test_every_other_module_is_private() -> None:
    """A module that is not public has a name starting with ``_`` (itself or a package above)."""
    from pathlib import Path

    root = Path(framework.__file__).parent
    public = {"framework", "framework.__main__", "framework.services", "framework.testing"}
    leaked = []
    for path in root.rglob("*.py"):
        if "_app_template" in path.parts:
            continue
        parts = path.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name not in public and not any(p.startswith("_") for p in name.split(".")[1:]):
            leaked.append(name)
    assert not leaked, f"public by name but not by contract: {leaked}"


@pytest.mark.parametrize("module", [framework, framework.services, framework.testing])
def test_every_exported_name_exists(module: object) -> None:
    for name in module.__all__:  # type: ignore[attr-defined]
        assert getattr(module, name) is not None, name


def test_exit_codes_are_the_contract() -> None:
    assert {c.name: int(c) for c in ExitCode} == {
        "OK": 0,
        "FAILURE": 1,
        "CONFIG": 78,
        "FORCED": 130,
    }


def test_importing_framework_loads_no_server_or_database() -> None:
    """Importing the package stays cheap: uvicorn, SQLAlchemy, OpenTelemetry and sentry-sdk load
    only when a service is made or started (also when the telemetry classes are looked up)."""
    code = (
        "import sys, framework, framework.services as s; s.TelemetryService; s.SentryService; "
        "print(sorted(m for m in ('uvicorn', 'sqlalchemy', 'opentelemetry', 'sentry_sdk') "
        "if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


def test_python_dash_m_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "framework", "--help"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0
    for command in ("run", "check", "config", "graph", "new"):
        assert command in result.stdout


def test_app_main_parses_the_run_options(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.sample_apps import App

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as info:
        App.main(["--set", "lifecycle.stop_timeout=abc"])
    assert info.value.code == 78


def test_importing_the_runner_does_not_load_the_cli() -> None:
    """The runner (`framework._runtime.application`) imports neither the CLI nor click."""
    code = "import sys, framework._runtime.application; print('framework._cli.commands' in sys.modules, 'click' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]
