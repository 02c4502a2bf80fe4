"""Secrets in their escaped forms: a SecretStr holding a backslash, a quote or a newline, and a
multi-line PEM key, never appear in any output, as they are, as ``repr()`` or JSON escape them, or
line by line.

A real ``framework run`` process (``tests.test_secrets_escaped:EscapedApp``), in both log formats,
with a log file: a service logs the secrets inside a dict (``repr``) and inside ``json.dumps``,
then fails to start with both in the exception (the failed-start traceback).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from dependency_injector import containers, providers
from loguru import logger
from pydantic import BaseModel, Field, SecretStr

from framework import Application, Service, Settings
from tests._process import spawn, with_sets

TOKEN = "tok\\SECRET\\x'\"q\nsecond-line-of-token"
PEM = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n"
    "MzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dVMvDuictGeurT8jNbvJZHtCSuYEvu\n"
    "-----END PRIVATE KEY-----\n"
)


class Keys(BaseModel):
    token: SecretStr = SecretStr("")
    pem: SecretStr = SecretStr("")


class EscapedSettings(Settings):
    keys: Keys = Field(default_factory=Keys)


class Client(Service):
    def __init__(self, keys: Keys) -> None:
        self.keys = keys

    async def start(self) -> None:
        token, pem = self.keys.token.get_secret_value(), self.keys.pem.get_secret_value()
        headers = {"Authorization": f"Bearer {token}"}
        logger.info(f"calling with {headers}")
        logger.info("payload {}", json.dumps({"key": pem, "token": token}))
        raise RuntimeError(f"rejected: {headers!r} with key {pem!r}")


class EscapedContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=EscapedSettings)
    client = providers.Singleton(Client, settings.provided.keys)


class EscapedApp(Application):
    container_class = EscapedContainer
    settings_class = EscapedSettings


def forms(secret: str) -> set[str]:
    """How a careless output could write ``secret``."""
    found = {secret, repr(secret)[1:-1], json.dumps(secret)[1:-1]}
    found |= {repr(repr(secret))[1:-1], json.dumps(json.dumps(secret))[1:-1]}
    found |= {line for line in secret.splitlines() if len(line) >= 20 and "-----" not in line}
    return found


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["text", "json"])
def test_escaped_secrets_never_printed(tmp_path: Path, fmt: str) -> None:
    """stderr and the log file hold none of the forms; the failure and the mask are shown."""
    log = tmp_path / "app.log"
    sets = with_sets(f"logging.format='{fmt}'", f"logging.file='{log}'")
    env = {"APP_KEYS__TOKEN": TOKEN, "APP_KEYS__PEM": PEM}
    proc = spawn(tmp_path, "run", "tests.test_secrets_escaped:EscapedApp", *sets, env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    outputs = {"stdout": out, "stderr": err, "log file": log.read_text(encoding="utf-8")}
    for where, text in outputs.items():
        for form in forms(TOKEN) | forms(PEM):
            assert form not in text, f"{form!r} in {where}:\n{text}"
    assert "rejected:" in err and "**********" in err
