"""Secrets never leak; health and metrics reveal no configuration; bad targets never crash."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import signal
import urllib.request
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from loguru import logger

from framework._cli.commands import load_target
from framework._config.settings import LoggingSettings
from framework._engine.errors import TargetError
from framework._engine.secrets import SECRET_MASK, Masker, mask, remember
from framework._process.launch import fail
from framework._runtime.logs import setup_logging
from framework._runtime.messages import error_text
from framework._runtime.report import write_report
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
@pytest.mark.parametrize(
    ("form", "shown"),
    [
        ("app:{pw}@127.0.0.1:{port}/orders", "app:***@127.0.0.1"),
        ("app@127.0.0.1:{port}/orders?password={pw}", "/orders?password=***"),
    ],
    ids=["userinfo", "query"],
)
def test_a_password_in_a_database_url_appears_in_no_output(
    tmp_path: Path, form: str, shown: str
) -> None:
    """A start that fails on a URL with a password (either form): the error names the URL, masked;
    `run`, the log, `config show` and `check` never print the password."""
    url = "postgresql+asyncpg://" + form.format(pw=PLANTED, port=free_port())
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
    assert shown in run.stderr
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
    """Any string as a target is a `TargetError` (a clear message), never another exception."""
    module = spec.partition(":")[0]
    top = module.split(".")[0]
    if top and top.isidentifier():
        with contextlib.suppress(ValueError, ImportError):
            # never import a real module just because the fuzzer named it
            assume(importlib.util.find_spec(top) is None)
    with pytest.raises(TargetError):
        load_target(spec)


# -- the one masking path -------------------------------------------------------------------------

TOKEN = "t0ken-UNIT-planted"
URL_PW = "urlpw-UNIT-planted"


def test_the_masker_masks_known_secrets_longest_first_and_every_url_password() -> None:
    """Known secrets (whole, not a shorter one inside), userinfo and query passwords."""
    masker = Masker({"abc", "abcdef"})
    assert masker("x abcdef y abc") == f"x {SECRET_MASK} y {SECRET_MASK}"
    text = masker("to postgresql://u:pw1@h/db and mysql://h/db?user=u&password=pw2")
    assert "pw1" not in text
    assert "pw2" not in text


def test_the_masker_masks_the_quoted_and_unquoted_forms_of_a_secret() -> None:
    """A URL password ``p%40ss/w`` is ``p@ss/w`` in a driver's error, and the reverse."""
    assert (
        Masker({"p%40ss%2Fw0rd"})("auth failed for p@ss/w0rd") == f"auth failed for {SECRET_MASK}"
    )
    assert Masker({"p@ss/w0rd"})("in p%40ss%2Fw0rd") == f"in {SECRET_MASK}"


def test_the_masker_returns_text_without_a_secret_unchanged() -> None:
    """The fast path: no secret and no ``://`` returns the very same string."""
    text = "service 'db' started in 0.012 s"
    assert Masker({"s3cret-one", "s3cret-two"})(text) is text


def test_remembered_secrets_are_masked_everywhere_and_accumulate() -> None:
    """`remember` adds to what `mask` masks; earlier secrets stay masked."""
    remember({"first-UNIT-secret"})
    remember({"second-UNIT-secret"})
    assert mask("first-UNIT-secret second-UNIT-secret") == f"{SECRET_MASK} {SECRET_MASK}"


def _raise_with_secrets() -> None:
    try:
        raise ConnectionError(f"token {TOKEN} rejected")
    except ConnectionError as exc:
        raise RuntimeError(f"cannot reach postgresql://app:{URL_PW}@db/x with {TOKEN}") from exc


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_tracebacks_are_masked_in_both_formats(tmp_path: Path, fmt: str) -> None:
    """A logged exception, its cause, uvicorn's stdlib traceback and any field: masked."""
    path = tmp_path / "out.log"
    sink = setup_logging(LoggingSettings(file=path, stderr=False, format=fmt), {TOKEN})
    try:
        try:
            _raise_with_secrets()
        except RuntimeError:
            logger.exception("start failed")
            logging.getLogger("uvicorn.error").error("Exception in ASGI application", exc_info=True)
        logger.bind(token=TOKEN, conf={"key": TOKEN}).info("fields")
    finally:
        sink.flush_sync()
    text = path.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert URL_PW not in text
    if fmt == "json":
        records = [json.loads(line) for line in text.splitlines()]
        assert [bool(r.get("exception")) for r in records] == [True, True, False]
        assert records[2]["token"] == SECRET_MASK
        assert records[2]["conf"] == str({"key": SECRET_MASK})
        text = "\n".join(r.get("exception", "") for r in records)
    else:
        assert f"token={SECRET_MASK} conf={ {'key': SECRET_MASK} }" in text
    assert text.count("Traceback (most recent call last)") == 4  # the cause and the error, twice
    assert f"RuntimeError: cannot reach postgresql://app:***@db/x with {SECRET_MASK}" in text
    assert f"ConnectionError: token {SECRET_MASK} rejected" in text


def test_the_report_masks_the_reason_and_the_errors(tmp_path: Path) -> None:
    """A crash's reason carries the exception text: masked in the ``--report`` file."""
    remember({TOKEN})
    path = tmp_path / "report.json"
    entry = {"service": "w", "errors": [mask(f"service 'w' crashed: {TOKEN}")]}
    write_report(path, [entry], 1, f"service 'w' crashed: RuntimeError: with {TOKEN}")
    report = json.loads(path.read_text(encoding="utf-8"))
    assert report["reason"] == f"service 'w' crashed: RuntimeError: with {SECRET_MASK}"
    assert TOKEN not in path.read_text(encoding="utf-8")


def test_cli_errors_and_exception_wording_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """`fail` (every CLI error) and `error_text` mask remembered secrets and URL passwords."""
    remember({TOKEN})
    assert error_text(ValueError(TOKEN)) == f"ValueError: {SECRET_MASK}"
    with pytest.raises(SystemExit) as exit_info:
        fail(ValueError(f"bad {TOKEN} in postgresql://u:{URL_PW}@h/db"))
    assert exit_info.value.code == 78
    err = capsys.readouterr().err
    assert err == f"error: bad {SECRET_MASK} in postgresql://u:***@h/db\n"
