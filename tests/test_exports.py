"""The public surface: what `framework` exports is deliberate, importable, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import pytest

import framework
import framework.services
import framework.testing
from framework import ExitCode


def test_top_level_exports() -> None:
    assert set(framework.__all__) == {
        "Application",
        "ConfigError",
        "DependencyCycleError",
        "ExitCode",
        "FrameworkError",
        "Service",
        "ServiceError",
        "ServiceState",
        "Settings",
        "ShutdownError",
        "StartupError",
    }
    assert isinstance(framework.__all__, tuple)


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
    """Importing the package stays cheap: uvicorn and SQLAlchemy load only when a service is made."""
    code = "import sys, framework, framework.services; print(sorted(m for m in ('uvicorn', 'sqlalchemy') if m in sys.modules))"
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


def test_module_paths_users_import_keep_working() -> None:
    """The paths users, the template and the docs import from still give the same names."""
    from framework._engine.events import EventBus, ShutdownStarted
    from framework._engine.lifecycle import Lifecycle, LifecycleState, ServiceRecord
    from framework._runtime.application import Application
    from framework.services._logging import LoggingSettings, LogSink, log_event, setup_logging

    assert Application is framework.Application
    assert {Lifecycle, LifecycleState, ServiceRecord, EventBus, ShutdownStarted}
    assert {LoggingSettings, LogSink, log_event, setup_logging}


def test_importing_the_runner_does_not_load_the_cli() -> None:
    """`framework._runtime.application` no longer imports `framework._cli.commands` (nor click) to be imported."""
    code = "import sys, framework._runtime.application; print('framework._cli.commands' in sys.modules, 'click' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.split() == ["False", "False"]
