"""Building the container: a provider argument dependency-injector cannot copy is a graph error
(exit 78) naming the provider and what to do, found before anything starts."""

from __future__ import annotations

from pathlib import Path

import pytest
from dependency_injector import containers, providers
from starlette.applications import Starlette

from framework import Application, Settings
from framework.services import HttpService
from tests._process import run_cli


class StarletteArgument(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    http = providers.Singleton(HttpService, app=Starlette(), settings=settings.provided.http)


class StarletteArgumentApp(Application):
    container_class = StarletteArgument


class WrappedArgument(StarletteArgument):
    http = providers.Singleton(
        HttpService,
        app=providers.Object(Starlette()),
        settings=StarletteArgument.settings.provided.http,
    )


class WrappedArgumentApp(Application):
    container_class = WrappedArgument


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "check"])
def test_an_argument_that_cannot_be_copied_is_one_line_and_exit_78(
    tmp_path: Path, command: str
) -> None:
    """A Starlette app passed straight to a Singleton: one line naming the provider, the argument
    and the fix; no traceback; nothing started."""
    result = run_cli(tmp_path, command, "tests.test_container:StarletteArgumentApp")
    assert result.returncode == 78, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines == [
        "error: StarletteArgument: provider 'http': its argument 'app' (a Starlette object) "
        "cannot be copied, and dependency-injector copies plain arguments when it creates the "
        "container; wrap the object in providers.Object(...), or create it with a provider of "
        "its own"
    ]


def test_the_fix_the_message_names_works(tmp_path: Path) -> None:
    """Wrapped in providers.Object, the same app object builds."""
    app = WrappedArgumentApp(config_dir=tmp_path)
    assert "http" in app.container.providers
