"""The planted-secret sweep: no failure path prints a secret, anywhere.

Each cell runs one failure path in a real ``framework run`` process, at DEBUG, in one log format,
with a log file and ``--report``: a ``start()``, ``run()`` or ``stop()`` that raises, a request
handler that raises (uvicorn's traceback), the database refusing the connection, an unparseable
database URL, a forced shutdown. Every byte the process wrote (stdout, stderr, the log file, the
report) is then searched for the planted values: a SecretStr token, a URL userinfo password and a
URL query password. None may appear, and the failure itself must be visible, masked, in the same
bytes (so the sweep cannot pass by printing nothing).

The applications below are what the child processes run (``tests.test_secrets_sweep:LeakyApp``).
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
import pytest
from dependency_injector import containers, providers
from loguru import logger
from pydantic import BaseModel, Field, SecretStr

from framework import Application, Service, Settings
from framework._engine.secrets import SECRET_MASK
from framework.services import DatabaseService, HttpService
from tests._process import free_port, spawn, with_sets

TOKEN = "tok3n-PLANTED-7f3a9c"  # the values searched for in every output
USERINFO_PW = "us3r-PLANTED-91c2d"
QUERY_PW = "qu3ry-PLANTED-2b8e4"
PLANTED = (TOKEN, USERINFO_PW, QUERY_PW)

Fail = Literal["", "start", "run", "stop", "forced"]


class Leak(BaseModel):
    token: SecretStr = SecretStr("")
    upstream: str = ""  # a URL with a password in its userinfo
    replica: str = ""  # a URL with a password as a query parameter
    fail: Fail = ""


class LeakSettings(Settings):
    leak: Leak = Field(default_factory=Leak)


def leaky_error(leak: Leak) -> RuntimeError:
    """An error whose text, and whose cause's text, carry every planted value."""
    token = leak.token.get_secret_value()
    error = RuntimeError(f"cannot reach {leak.upstream} or {leak.replica} with token {token}")
    error.__cause__ = ConnectionError(f"token {token} rejected by {leak.upstream}")
    return error


class Leaky(Service):
    """Fails where ``leak.fail`` says, with every planted value in the exception."""

    def __init__(self, leak: Leak, **deps: object) -> None:
        self.leak = leak

    async def start(self) -> None:
        logger.debug(f"connecting to {self.leak.upstream} and {self.leak.replica}")
        if self.leak.fail == "start":
            raise leaky_error(self.leak)

    async def run(self) -> None:
        if self.leak.fail != "run":
            await anyio.sleep_forever()
        await anyio.sleep(0.1)
        raise leaky_error(self.leak)

    async def stop(self) -> None:
        if self.leak.fail == "stop":
            raise leaky_error(self.leak)
        if self.leak.fail == "forced":
            logger.warning(f"flushing to {self.leak.replica} before stopping")
            try:
                await anyio.sleep_forever()  # until the second signal cancels it
            except anyio.get_cancelled_exc_class():
                raise leaky_error(self.leak) from None


class LeakyAsgi:
    """Every HTTP request raises (uvicorn logs "Exception in ASGI application")."""

    def __init__(self, leak: Leak) -> None:
        self.leak = leak

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            raise leaky_error(self.leak)


class LeakyContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=LeakSettings)
    leaky = providers.Singleton(Leaky, settings.provided.leak)


class LeakyWebContainer(LeakyContainer):
    http = providers.Singleton(
        HttpService,
        app=providers.Factory(LeakyAsgi, LeakyContainer.settings.provided.leak),
        settings=LeakyContainer.settings.provided.http,
    )


class LeakyDbContainer(LeakyContainer):
    db = providers.Singleton(DatabaseService, settings=LeakyContainer.settings.provided.database)


class LeakyApp(Application):
    container_class = LeakyContainer
    settings_class = LeakSettings


class LeakyWebApp(LeakyApp):
    container_class = LeakyWebContainer


class LeakyDbApp(LeakyApp):
    container_class = LeakyDbContainer


# -- the sweep ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FailurePath:
    """One failure path: the app, its settings, how it is driven, what must be visible."""

    app: str
    env: dict[str, str]
    drive: Callable[[subprocess.Popen[str], Path, int], None]
    exit_code: int
    visible: tuple[str, ...]


def _wait_in(log: Path, text: bytes, proc: subprocess.Popen[str], timeout: float = 20) -> None:
    """Until ``text`` is in the log file (polled, bounded); fails if the process ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and text in log.read_bytes():
            return
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {log} (exit code {proc.poll()})")


def _wait_exit(proc: subprocess.Popen[str], log: Path, port: int) -> None:
    """The path ends the process by itself."""


def _terminate(proc: subprocess.Popen[str], log: Path, port: int) -> None:
    _wait_in(log, b"startup complete", proc)
    proc.send_signal(signal.SIGTERM)


def _request(proc: subprocess.Popen[str], log: Path, port: int) -> None:
    _wait_in(log, b"startup complete", proc)
    with pytest.raises(urllib.error.HTTPError, match="500"):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/orders", timeout=10)
    _wait_in(log, b"Exception in ASGI application", proc)
    proc.send_signal(signal.SIGTERM)


def _force(proc: subprocess.Popen[str], log: Path, port: int) -> None:
    _wait_in(log, b"startup complete", proc)
    proc.send_signal(signal.SIGTERM)
    _wait_in(log, b"stopping service 'leaky'", proc)
    time.sleep(0.1)  # the stop is now waiting
    proc.send_signal(signal.SIGTERM)


def _leak(fail: Fail) -> dict[str, str]:
    return {
        "APP_LEAK__TOKEN": TOKEN,
        "APP_LEAK__UPSTREAM": f"postgresql://svc:{USERINFO_PW}@127.0.0.1:1/orders",
        "APP_LEAK__REPLICA": f"postgresql://svc@127.0.0.1:1/orders?password={QUERY_PW}",
        "APP_LEAK__FAIL": fail,
    }


SHOWN = f"with token {SECRET_MASK}"  # the exception text, printed masked
TRACEBACK = "Traceback (most recent call last)"
PATHS: dict[str, FailurePath] = {
    "start raises": FailurePath(
        "LeakyApp", _leak("start"), _wait_exit, 1, ("failed to start", SHOWN, TRACEBACK)
    ),
    "run raises": FailurePath(
        "LeakyApp", _leak("run"), _wait_exit, 1, ("crashed in run()", SHOWN, TRACEBACK)
    ),
    "stop raises": FailurePath(
        "LeakyApp", _leak("stop"), _terminate, 1, ("failed to stop", SHOWN, TRACEBACK)
    ),
    "request handler raises": FailurePath(
        "LeakyWebApp",
        _leak(""),
        _request,
        0,
        ("Exception in ASGI application", SHOWN, TRACEBACK),
    ),
    "database refuses the connection": FailurePath(
        "LeakyDbApp",
        {
            **_leak(""),
            "APP_DATABASE__URL": f"postgresql+asyncpg://app@127.0.0.1:{free_port()}/orders"
            f"?password={QUERY_PW}",
        },
        _wait_exit,
        1,
        ("service 'db' failed to start", "password=***"),
    ),
    "unparseable database URL": FailurePath(
        "LeakyDbApp",
        {**_leak(""), "APP_DATABASE__URL": f"app:{USERINFO_PW}@nohost"},
        _wait_exit,
        78,
        ("database.url: 'app:***@nohost' is invalid",),
    ),
    "forced shutdown": FailurePath(
        "LeakyApp",
        _leak("forced"),
        _force,
        130,
        ("forcing the shutdown", "flushing to postgresql://svc@127.0.0.1:1/orders?password=***"),
    ),
}


FORMATS = ("text", "json")
OUTPUTS = ("stdout", "stderr", "log file", "report")


def secrets_section() -> list[str]:
    """The Secrets section of docs/reliability.md (generated by tests/test_reliability.py)."""
    cells = len(PATHS) * len(FORMATS)
    lines = [
        "## Secrets",
        "",
        "A `SecretStr` token, a URL userinfo password (`user:pw@`) and a URL query password",
        "(`?password=`) are planted in the settings. `tests/test_secrets_sweep.py` runs each failure",
        "path below in a real `framework run` process, in both log formats at DEBUG, with a log file",
        f"and `--report`, and searches every byte written ({', '.join(OUTPUTS)}): no planted value",
        "appears, and the failure itself is shown, masked.",
        "",
        f"{len(PATHS)} paths x {len(FORMATS)} formats = {cells} processes; {cells} x "
        f"{len(OUTPUTS)} outputs = {cells * len(OUTPUTS)} outputs swept.",
        "",
        "| failure path | exit | shown, masked |",
        "|---|---|---|",
    ]
    for name, path in PATHS.items():
        shown = ", ".join(f"`{text}`" for text in path.visible)
        lines.append(f"| {name} | {path.exit_code} | {shown} |")
    lines += [
        "",
        "The same values never appear in `framework config show`, `framework check`, `/readyz` or",
        "`/metrics` (`tests/test_security.py`). How masking works: [Secrets](concepts/secrets.md).",
    ]
    return lines


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", list(PATHS))
def test_no_failure_path_prints_a_planted_secret(tmp_path: Path, name: str, fmt: str) -> None:
    """Stdout, stderr, the log file and the report hold no planted value; the failure shows."""
    path = PATHS[name]
    log, report, port = tmp_path / "app.log", tmp_path / "report.json", free_port()
    sets = with_sets(
        "logging.level='DEBUG'",
        f"logging.format='{fmt}'",
        f"logging.file='{log}'",
        f"http.port={port}",
        "database.echo=true",
        "lifecycle.stop_timeout=20",
    )
    target = f"tests.test_secrets_sweep:{path.app}"
    proc = spawn(tmp_path, "run", target, "--report", str(report), *sets, env=path.env)
    try:
        path.drive(proc, log, port)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    outputs = {
        "stdout": out,
        "stderr": err,
        "log file": log.read_text(encoding="utf-8") if log.exists() else "",
        "report": report.read_text(encoding="utf-8") if report.exists() else "",
    }
    everything = "\n".join(outputs.values())
    assert proc.returncode == path.exit_code, everything
    for where, text in outputs.items():
        for planted in PLANTED:
            assert planted not in text, f"{planted} in {where}:\n{text}"
    for shown in path.visible:
        assert shown in everything, f"{shown!r} not shown:\n{everything}"
