"""Layered configuration: precedence, provenance, every error at once, redaction, no tracebacks."""

from __future__ import annotations

import contextlib
import json
import os
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from framework import ConfigError, Settings
from framework._config.defaults import render_defaults
from framework._config.load import load_settings, parse_override, redact, secrets_of
from tests._process import REPO, run_cli
from tests.sample_apps import SampleSettings


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.upper().startswith("APP_"):
            monkeypatch.delenv(key)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


LAYERS = ["default", "default.toml", "prod.yaml", ".env", "env", "override"]


@pytest.mark.parametrize("top", range(1, len(LAYERS)))
def test_each_layer_beats_the_one_below(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, top: int
) -> None:
    """With layers up to `top` setting lifecycle.stop_timeout, the highest one wins and is named."""
    present = LAYERS[1 : top + 1]
    value = {name: float(i) for i, name in enumerate(LAYERS)}
    if "default.toml" in present:
        write(
            tmp_path / "config/default.toml",
            f"[lifecycle]\nstop_timeout = {value['default.toml']}\n",
        )
    if "prod.yaml" in present:
        write(tmp_path / "config/prod.yaml", f"lifecycle:\n  stop_timeout: {value['prod.yaml']}\n")
    if ".env" in present:
        write(tmp_path / ".env", f"APP_LIFECYCLE__STOP_TIMEOUT={value['.env']}\n")
    if "env" in present:
        monkeypatch.setenv("APP_LIFECYCLE__STOP_TIMEOUT", str(value["env"]))
    overrides = {"lifecycle.stop_timeout": value["override"]} if "override" in present else None
    loaded = load_settings(Settings, env="prod", overrides=overrides)
    winner = LAYERS[top]
    assert loaded.settings.lifecycle.stop_timeout == value[winner]
    source = str(loaded.source_of("lifecycle.stop_timeout"))
    expected = {
        "default.toml": "config/default.toml",
        "prod.yaml": "config/prod.yaml",
        ".env": ".env APP_LIFECYCLE__STOP_TIMEOUT",
        "env": "env APP_LIFECYCLE__STOP_TIMEOUT",
        "override": "override lifecycle.stop_timeout",
    }[winner]
    assert source == expected


def test_untouched_values_come_from_defaults(tmp_path: Path) -> None:
    loaded = load_settings(Settings)
    assert loaded.settings.lifecycle.shutdown_timeout == 30
    assert str(loaded.source_of("lifecycle.shutdown_timeout")) == "default"
    assert loaded.files == []


def test_env_name_from_app_env_and_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "config/staging.toml", "[http]\nport = 1111\n")
    write(tmp_path / "config/prod.toml", "[http]\nport = 2222\n")
    monkeypatch.setenv("APP_ENV", "staging")
    assert load_settings(Settings).settings.http.port == 1111
    assert load_settings(Settings, env="prod").settings.http.port == 2222  # --env wins


def test_nested_service_sections_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_SERVICES__DB__STOP_TIMEOUT", "3")
    loaded = load_settings(Settings)
    assert loaded.settings.service("db").stop_timeout == 3
    assert str(loaded.source_of("services.db.stop_timeout")) == "env APP_SERVICES__DB__STOP_TIMEOUT"


def test_prefix_is_changeable_by_a_subclass(monkeypatch: pytest.MonkeyPatch) -> None:
    class ShopSettings(Settings):
        model_config = SettingsConfigDict(env_prefix="SHOP_")

    monkeypatch.setenv("SHOP_HTTP__PORT", "9999")
    monkeypatch.setenv("APP_HTTP__PORT", "1")
    assert load_settings(ShopSettings).settings.http.port == 9999


def test_every_problem_is_reported_at_once_with_its_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(
        tmp_path / "config/default.toml",
        "[lifecycle]\nshutdown_timeout = -5\nshutdwn_delay = 1\n[http]\nport = 'eighty'\n",
    )
    monkeypatch.setenv("APP_LIFECYCLE__STOP_TIMEOUT", "abc")
    with pytest.raises(ConfigError) as info:
        load_settings(Settings, overrides={"lifecycle.start_timeout": 0})
    problems = info.value.problems
    assert len(problems) == 5, problems
    text = "\n".join(problems)
    assert "lifecycle.stop_timeout: 'abc' is invalid" in text
    assert "(from env APP_LIFECYCLE__STOP_TIMEOUT)" in text
    assert (
        "lifecycle.shutdown_timeout: -5 is invalid: Input should be greater than 0 (from config/default.toml)"
        in text
    )
    assert (
        "lifecycle.shutdwn_delay: unknown setting; did you mean 'shutdown_delay'? (from config/default.toml)"
        in text
    )
    assert "http.port: 'eighty' is invalid" in text
    assert (
        "lifecycle.start_timeout: 0 is invalid: Input should be greater than 0 (from override lifecycle.start_timeout)"
        in text
    )


def test_shutdown_delay_may_be_zero_but_not_negative() -> None:
    assert (
        load_settings(
            Settings, overrides={"lifecycle.shutdown_delay": 0}
        ).settings.lifecycle.shutdown_delay
        == 0
    )
    with pytest.raises(ConfigError, match="shutdown_delay"):
        load_settings(Settings, overrides={"lifecycle.shutdown_delay": -1})


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        (
            "default.toml",
            "[lifecycle]\nstop_timeout = \n",
            r"config/default.toml: invalid TOML: .*line 2",
        ),
        (
            "default.yaml",
            "lifecycle:\n  stop_timeout: [1,\n",
            r"config/default.yaml: invalid YAML: .*line \d+",
        ),
        (
            "default.yaml",
            "- just\n- a list\n",
            r"config/default.yaml: the top level must be a mapping",
        ),
    ],
)
def test_malformed_files_name_file_and_line(
    tmp_path: Path, name: str, text: str, message: str
) -> None:
    write(tmp_path / "config" / name, text)
    with pytest.raises(ConfigError, match=message):
        load_settings(Settings)


def test_toml_and_yaml_for_the_same_layer_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "config/default.toml", "")
    write(tmp_path / "config/default.yaml", "")
    with pytest.raises(ConfigError, match="both exist; keep only one"):
        load_settings(Settings)


def test_missing_explicit_config_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config directory 'nope' does not exist"):
        load_settings(Settings, config_dir="nope")


def test_unknown_env_file_setting_is_reported(tmp_path: Path) -> None:
    write(tmp_path / ".env", "APP_LIFECYCEL__STOP_TIMEOUT=3\nOTHER_TOOL=1\n")
    with pytest.raises(ConfigError, match=r"APP_LIFECYCEL__STOP_TIMEOUT \(.env\): unknown setting"):
        load_settings(Settings)


def test_invalid_json_in_a_complex_env_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_DATABASE__CONNECT_ARGS", "{not json")
    with pytest.raises(ConfigError, match="environment variables APP_"):
        load_settings(Settings)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("lifecycle.stop_timeout=2.5", ("lifecycle.stop_timeout", 2.5)),
        ("http.port=8080", ("http.port", 8080)),
        ("http.access_log=false", ("http.access_log", False)),
        ('database.url="sqlite+aiosqlite:///x.db"', ("database.url", "sqlite+aiosqlite:///x.db")),
        ("logging.level=DEBUG", ("logging.level", "DEBUG")),
        ("behaviour.start_error=['a', 'b']", ("behaviour.start_error", ["a", "b"])),
        ("x.y= spaced ", ("x.y", "spaced")),
    ],
)
def test_override_values_are_toml_literals(text: str, expected: tuple[str, object]) -> None:
    assert parse_override(text) == expected


@pytest.mark.parametrize("text", ["novalue", "=3", ""])
def test_malformed_override(text: str) -> None:
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override(text)


class SecretSettings(Settings):
    api_token: SecretStr = Field(SecretStr(""), description="A secret.")


PLANTED = "hunter2-planted-secret"


def test_secrets_are_redacted_everywhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_API_TOKEN", PLANTED)
    monkeypatch.setenv("APP_DATABASE__URL", f"postgresql+asyncpg://app:{PLANTED}@127.0.0.1/db")
    loaded = load_settings(SecretSettings)
    shown = json.dumps([[k, v, str(s)] for k, v, s in loaded.items()], default=str)
    assert PLANTED not in shown
    assert "postgresql+asyncpg://app:***@127.0.0.1/db" in shown
    assert secrets_of(loaded.settings) == {PLANTED}
    with pytest.raises(ConfigError) as info:
        load_settings(SecretSettings, overrides={"api_token": 5, "database.pool_size": PLANTED})
    assert PLANTED not in str(info.value)
    assert "api_token: value hidden" in str(info.value)


def test_redact_url_and_secret_words() -> None:
    assert redact("redis://:pw@host:6379/0") == "redis://:***@host:6379/0"
    assert redact("plain text") == "plain text"
    assert redact("x", ("db_password",)) == "**********"


@pytest.mark.slow
def test_env_and_file_errors_together_exit_78_and_start_nothing(tmp_path: Path) -> None:
    """The issue's acceptance: APP_LIFECYCLE__STOP_TIMEOUT=abc plus a bad default.toml value."""
    write(tmp_path / "config/default.toml", "[lifecycle]\nshutdown_timeout = 'soon'\n")
    journal = tmp_path / "journal.txt"
    result = run_cli(
        tmp_path,
        "run",
        "tests.sample_apps:App",
        "--set",
        f'behaviour.journal="{journal}"',
        env={"APP_LIFECYCLE__STOP_TIMEOUT": "abc"},
    )
    assert result.returncode == 78
    assert "(from env APP_LIFECYCLE__STOP_TIMEOUT)" in result.stderr
    assert "lifecycle.shutdown_timeout: 'soon' is invalid" in result.stderr
    assert "(from config/default.toml)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not journal.exists()  # no service started


@pytest.mark.slow
def test_config_show_json_names_env_vars_and_hides_secrets(tmp_path: Path) -> None:
    result = run_cli(
        tmp_path,
        "config",
        "show",
        "tests.sample_apps:App",
        "--format",
        "json",
        env={
            "APP_HTTP__PORT": "9090",
            "APP_BEHAVIOUR__API_KEY": PLANTED,
            "APP_DATABASE__URL": f"postgresql+asyncpg://u:{PLANTED}@h/d",
        },
    )
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["http.port"] == {"value": 9090, "source": "env APP_HTTP__PORT"}
    assert shown["lifecycle.stop_timeout"] == {"value": 10.0, "source": "default"}
    assert PLANTED not in result.stdout
    assert shown["behaviour.api_key"]["value"] == "**********"
    text = run_cli(
        tmp_path, "config", "show", "tests.sample_apps:App", env={"APP_BEHAVIOUR__API_KEY": PLANTED}
    )
    assert text.returncode == 0
    assert PLANTED not in text.stdout
    assert "http.port" in text.stdout


@pytest.mark.slow
def test_check_budget_lint(tmp_path: Path) -> None:
    ok = run_cli(tmp_path, "check", "tests.sample_apps:App")
    assert ok.returncode == 0
    assert "warning" not in ok.stderr
    # chain d -> b -> a of stop bounds 10 s each = 30 s, plus a 5 s delay, exceeds 30 s
    tight = ["--set", "lifecycle.shutdown_delay=5"]
    warned = run_cli(tmp_path, "check", "tests.sample_apps:App", *tight)
    assert warned.returncode == 0
    assert "the shutdown budget may not hold" in warned.stderr
    assert "(d -> b -> a)" in warned.stderr or "(d -> c -> a)" in warned.stderr
    strict = run_cli(tmp_path, "check", "tests.sample_apps:App", *tight, "--strict")
    assert strict.returncode == 78
    grace = run_cli(tmp_path, "check", "tests.sample_apps:App", "--grace-period", "30")
    assert "platform grace period 30 s (--grace-period)" in grace.stderr
    roomy = run_cli(tmp_path, "check", "tests.sample_apps:App", "--grace-period", "60")
    assert "warning" not in roomy.stderr


def test_repository_default_toml_is_in_sync_with_the_models() -> None:
    """config/default.toml lists every knob with its default; regenerate with `framework config defaults`."""
    from framework._cli.commands import DEFAULTS_HEADER

    path = REPO / "config" / "default.toml"
    assert path.read_text(encoding="utf-8") == render_defaults(Settings, DEFAULTS_HEADER)
    values = tomllib.loads(path.read_text(encoding="utf-8"))
    defaults = Settings()
    for section, fields in values.items():
        for key, value in fields.items():
            assert getattr(getattr(defaults, section), key) == value, f"{section}.{key}"
    for section in ("lifecycle", "http", "database", "logging"):
        model = type(getattr(defaults, section))
        text = path.read_text(encoding="utf-8")
        for key in model.model_fields:
            assert f"{key} = " in text, f"{section}.{key} is missing from config/default.toml"


# -- fuzzing: no input produces anything but a loaded config or a ConfigError ---------------------

toml_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=20),
    st.lists(st.integers(), max_size=3),
)
keys = st.sampled_from(
    [
        "lifecycle",
        "http",
        "database",
        "logging",
        "services",
        "behaviour",
        "bogus",
        "stop_timeout",
        "port",
        "level",
        "db",
        "url",
    ]
)


def toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return (
            "nan"
            if value != value
            else (
                "inf"
                if value == float("inf")
                else "-inf"
                if value == float("-inf")
                else repr(value)
            )
        )
    if isinstance(value, str):
        return json.dumps(value)
    return json.dumps(value)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    doc=st.dictionaries(
        keys, st.one_of(toml_values, st.dictionaries(keys, toml_values, max_size=4)), max_size=5
    ),
    raw=st.text(max_size=60),
    use_raw=st.booleans(),
    yaml_instead=st.booleans(),
)
def test_fuzzed_config_files_never_crash(
    tmp_path: Path, doc: dict[str, object], raw: str, use_raw: bool, yaml_instead: bool
) -> None:
    config = tmp_path / "fuzz"
    config.mkdir(exist_ok=True)
    for old in config.iterdir():
        old.unlink()
    if yaml_instead:
        text = raw if use_raw else json.dumps(doc, allow_nan=True)  # JSON is YAML
        write(config / "default.yaml", text)
    else:
        lines = []
        for key, value in doc.items():
            if isinstance(value, dict):
                lines.append(f"[{key}]")
                lines += [f"{k} = {toml_literal(v)}" for k, v in value.items()]
            else:
                lines.insert(0, f"{key} = {toml_literal(value)}")
        write(config / "default.toml", raw if use_raw else "\n".join(lines))
    with contextlib.suppress(ConfigError):  # anything else fails the test
        load_settings(SampleSettings, config_dir=config)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from(
        [
            "APP_LIFECYCLE__STOP_TIMEOUT",
            "APP_HTTP__PORT",
            "APP_SERVICES__DB__STOP_TIMEOUT",
            "APP_DATABASE__CONNECT_ARGS",
            "APP_LOGGING__LEVEL",
            "APP_HTTP",
            "APP_SERVICES",
            "APP_BEHAVIOUR__CRASH_AFTER",
        ]
    ),
    value=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=30,
    ),
    override=st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=40,
    ),
)
def test_fuzzed_env_values_and_set_strings_never_crash(
    name: str, value: str, override: str
) -> None:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        with contextlib.suppress(ConfigError):  # anything else fails the test
            load_settings(SampleSettings, overrides=dict([parse_override(override)]))
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old
