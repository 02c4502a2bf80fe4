"""Configuration a user can act on: hostile files, impossible timeouts, log sinks and database URLs
that cannot work, missing environment files, unknown sections. Each is a `ConfigError` naming the
key or file, its value (masked) and source, and what to do; never a traceback."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework import ConfigError, Settings
from framework._config.dburl import url_problem
from framework._config.load import load_settings
from tests._process import finish, framework_env, run_cli, spawn, wait_for, with_sets
from tests.sample_apps import SampleSettings


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.upper().startswith("APP_"):
            monkeypatch.delenv(key)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def problems_of(**kwargs: object) -> str:
    """The text of the ConfigError that loading raises."""
    with pytest.raises(ConfigError) as info:
        load_settings(Settings, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


BOMB = "".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n',
        *(
            f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
            for a, b in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)

MALFORMED = {
    "toml syntax": ("default.toml", "[lifecycle]\nstop_timeout = \n", "invalid TOML"),
    "yaml syntax": ("default.yaml", "lifecycle:\n  stop_timeout: [1,\n", "invalid YAML"),
    "yaml nested 10k deep": ("default.yaml", "a: " + "[" * 10_000 + "]" * 10_000, "nested more"),
    "yaml block nested deep": (
        "default.yaml",
        "".join(f"{' ' * i}k{i}:\n" for i in range(400)) + " " * 400 + "v: 1\n",
        "nested more",
    ),
    "toml array nested 5k deep": ("default.toml", "a = " + "[" * 5000 + "]" * 5000, "nested more"),
    "toml tables nested deep": ("default.toml", "[" + ".".join(["a"] * 200) + "]\n", "nested more"),
    "yaml billion laughs": ("default.yaml", BOMB, "expands to more than"),
    "yaml alias refers to itself": ("default.yaml", "a: &a {b: *a}\n", "refers to itself"),
    "not utf-8": ("default.toml", b'[http]\nhost = "caf\xe9"\n', "is not UTF-8 text"),
    "top-level list": ("default.yaml", "- just\n- a list\n", "top level must be a mapping"),
    "top-level scalar": ("default.yaml", "hello\n", "top level must be a mapping"),
    "nul character": ("default.yaml", "a: b\x00\n", "is not allowed"),
    "key that is not text": ("default.yaml", "http:\n  8080: x\n", "is not text"),
    "too large": ("default.toml", "# " + "x" * 300_000 + "\n", "is larger than"),
    "two documents": ("default.yaml", "a: 1\n---\nb: 2\n", "invalid YAML"),
}


@pytest.mark.parametrize("case", list(MALFORMED), ids=list(MALFORMED))
def test_a_malformed_file_is_one_problem_naming_it_quickly(tmp_path: Path, case: str) -> None:
    """Every way a file can be malformed: a ConfigError naming the file, fast, no other error."""
    name, text, message = MALFORMED[case]
    write(tmp_path / "config" / name, text)
    started = time.monotonic()
    with pytest.raises(ConfigError) as info:
        load_settings(Settings)
    elapsed = time.monotonic() - started
    assert f"config/{name}: " in str(info.value)
    assert message in str(info.value)
    assert len(info.value.problems) == 1
    assert elapsed < 1.0, f"{case} took {elapsed:.2f} s"  # typically a few milliseconds


def test_a_directory_where_a_file_belongs(tmp_path: Path) -> None:
    """`config/default.toml/` (a directory) is reported, not skipped silently."""
    (tmp_path / "config/default.toml").mkdir(parents=True)
    assert "config/default.toml: is a directory" in problems_of()


def test_a_pipe_where_a_file_belongs_is_not_opened(tmp_path: Path) -> None:
    """A FIFO named default.toml would block a reader forever: it is refused unopened."""
    (tmp_path / "config").mkdir()
    os.mkfifo(tmp_path / "config/default.toml")
    assert "is not a regular file" in problems_of()


def test_a_config_dir_that_is_a_file(tmp_path: Path) -> None:
    """`--config-dir` naming a file: a problem naming it."""
    write(tmp_path / "settings.toml", "[http]\nport = 1\n")
    assert "config directory 'settings.toml' is not a directory" in problems_of(
        config_dir="settings.toml"
    )


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("default.toml", ""),
        ("default.toml", "# nothing to set yet\n\n"),
        ("default.yaml", ""),
        ("default.yaml", "\n  \n"),
        ("default.yaml", "# nothing to set yet\n"),
        ("default.yaml", "---\n# an empty document\n"),
    ],
)
def test_an_empty_or_comment_only_file_sets_nothing(tmp_path: Path, name: str, text: str) -> None:
    """An empty document, or one holding only comments, is valid: an empty layer."""
    write(tmp_path / "config" / name, text)
    loaded = load_settings(Settings)
    assert loaded.files == [Path("config") / name]
    assert loaded.settings == Settings()


@pytest.mark.slow
def test_an_empty_and_a_comment_only_file_check_and_run(tmp_path: Path) -> None:
    """From the command line: an empty default.toml and a comment-only prod.yaml are read (the
    startup log names both), `check` exits 0 and the application starts and stops cleanly."""
    write(tmp_path / "config/default.toml", "")
    write(tmp_path / "config/prod.yaml", "# settings for production come later\n---\n")
    checked = run_cli(tmp_path, "check", "tests.sample_apps:App", "--env", "prod")
    assert checked.returncode == 0, checked.stderr
    assert "Traceback" not in checked.stderr
    journal = tmp_path / "journal.txt"
    proc = spawn(
        tmp_path,
        "run",
        "tests.sample_apps:App",
        "--env",
        "prod",
        *with_sets(f'behaviour.journal="{journal}"'),
    )
    wait_for(journal, "app ready")
    proc.send_signal(signal.SIGTERM)
    code, err = finish(proc)
    assert code == 0, err
    assert "config/default.toml" in err and "config/prod.yaml" in err, err
    assert "Traceback" not in err


def test_comments_only_and_a_utf8_bom_are_fine(tmp_path: Path) -> None:
    """A UTF-8 byte-order mark is accepted."""
    write(tmp_path / "other/default.toml", "\ufeff[http]\nport = 1234\n")
    assert load_settings(Settings, config_dir="other").settings.http.port == 1234


def test_yaml_anchors_within_bounds_still_work(tmp_path: Path) -> None:
    """Ordinary anchors and merge keys load as before."""
    write(
        tmp_path / "config/default.yaml",
        "x-bounds: &bounds {start_timeout: 3, stop_timeout: 4}\n"
        "services:\n  a: *bounds\n  b:\n    <<: *bounds\n    stop_timeout: 5\n",
    )
    with pytest.raises(ConfigError, match="x-bounds: unknown section"):
        load_settings(Settings)
    write(
        tmp_path / "config/default.yaml",
        "services:\n  a: &bounds {start_timeout: 3, stop_timeout: 4}\n"
        "  b:\n    <<: *bounds\n    stop_timeout: 5\n",
    )
    loaded = load_settings(Settings)
    assert loaded.settings.service("a").stop_timeout == 4
    assert loaded.settings.service("b").stop_timeout == 5
    assert loaded.settings.service("b").start_timeout == 3


def test_deep_values_from_the_environment_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    """JSON nested past the limit in an env var, or a deep override: a problem, not a crash."""
    monkeypatch.setenv("APP_DATABASE__CONNECT_ARGS", "[" * 100_000 + "]" * 100_000)
    assert "nested too deep" in problems_of()
    monkeypatch.setenv("APP_DATABASE__CONNECT_ARGS", "[" * 100 + "]" * 100)
    assert "nested more than 32 levels" in problems_of()
    monkeypatch.delenv("APP_DATABASE__CONNECT_ARGS")
    deep: object = 1
    for _ in range(200):
        deep = [deep]
    assert "override database.connect_args: the value is nested too deep" in problems_of(
        overrides={"database.connect_args": {"x": deep}}
    )


# -- timeouts -------------------------------------------------------------------------------------

TIMEOUT_KEYS = [
    "lifecycle.start_timeout",
    "lifecycle.stop_timeout",
    "lifecycle.startup_timeout",
    "lifecycle.shutdown_timeout",
    "lifecycle.shutdown_delay",
    "lifecycle.grace_period",
    "services.db.start_timeout",
    "services.db.stop_timeout",
]


@pytest.mark.parametrize("key", TIMEOUT_KEYS)
@pytest.mark.parametrize("literal", ["inf", "nan", "1e400", "-inf"])
def test_a_timeout_must_be_a_finite_number_of_seconds(
    tmp_path: Path, key: str, literal: str
) -> None:
    """`inf`, `nan` and `1e400` (which is inf) in a file: named with the key, value and file."""
    section, _, name = key.rpartition(".")
    write(tmp_path / "config/default.toml", f"[{section}]\n{name} = {literal}\n")
    text = problems_of()
    assert f"{key}: " in text
    assert "(from config/default.toml)" in text
    assert "finite number" in text or "greater than" in text


def test_a_timeout_from_env_or_override_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same from an env var and an override; a finite but absurd bound is refused too."""
    monkeypatch.setenv("APP_LIFECYCLE__STOP_TIMEOUT", "1e400")
    text = problems_of(overrides={"services.db.stop_timeout": 1e300})
    assert "lifecycle.stop_timeout: '1e400' is invalid: Input should be a finite number" in text
    assert "(from env APP_LIFECYCLE__STOP_TIMEOUT)" in text
    assert "services.db.stop_timeout: 1e+300 is invalid" in text
    assert "less than or equal to 604800 seconds (7 days)" in text


def test_other_seconds_and_sizes_are_bounded() -> None:
    """Keep-alive, pool timeouts and the listen backlog: finite and sane."""
    text = problems_of(
        overrides={
            "http.timeout_keep_alive": float("inf"),
            "http.backlog": 10**20,
            "database.pool_timeout": float("nan"),
            "database.pool_recycle": float("inf"),
        }
    )
    for key in ("timeout_keep_alive", "backlog", "pool_timeout", "pool_recycle"):
        assert f".{key}: " in text


# -- log sinks ------------------------------------------------------------------------------------


def test_a_log_file_that_is_a_directory(tmp_path: Path) -> None:
    """`logging.file` naming a directory."""
    text = problems_of(overrides={"logging.file": str(tmp_path)})
    assert "logging.file: " in text
    assert "is a directory; name a file in it" in text
    assert "(from override logging.file)" in text


def test_a_log_file_under_a_file(tmp_path: Path) -> None:
    """A missing parent that cannot be created (its own parent is a file); nothing is created."""
    write(tmp_path / "plain.txt", "x")
    write(tmp_path / "config/default.toml", '[logging]\nfile = "plain.txt/logs/app.log"\n')
    text = problems_of()
    assert "logging.file: 'plain.txt/logs/app.log' is invalid" in text
    assert "plain.txt is a file, not a directory" in text
    assert "(from config/default.toml)" in text


def test_a_missing_log_directory_that_can_be_created_is_fine_and_not_created(
    tmp_path: Path,
) -> None:
    """Validation creates nothing: the directory is made when logging starts."""
    loaded = load_settings(Settings, overrides={"logging.file": "logs/deep/app.log"})
    assert loaded.settings.logging.file == Path("logs/deep/app.log")
    assert not (tmp_path / "logs").exists()


def test_dev_full_opens_fine() -> None:
    """/dev/full can be opened for appending: a full disk is a runtime fault, not config."""
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    load_settings(Settings, overrides={"logging.file": "/dev/full"})


def _without_root_powers() -> list[str]:
    """A command prefix under which root obeys file modes (as everyone else does)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: a read-only directory is writable")
    drop = "-dac_override,-dac_read_search"
    return [setpriv, "--bounding-set", drop, "--inh-caps", drop]


@pytest.mark.slow
def test_a_log_file_in_a_read_only_directory(tmp_path: Path) -> None:
    """A read-only directory and a read-only file: `framework check` exits 78 naming the key."""
    readonly = tmp_path / "ro"
    readonly.mkdir()
    write(readonly / "old.log", "")
    (readonly / "old.log").chmod(0o444)
    readonly.chmod(0o555)
    for target in ("ro/new.log", "ro/old.log"):
        started = time.monotonic()
        result = subprocess.run(
            [
                *_without_root_powers(),
                *[sys.executable, "-m", "framework", "check", "tests.sample_apps:App"],
                *["--set", f'logging.file="{target}"'],
            ],
            cwd=tmp_path,
            env=framework_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 78, result.stderr
        assert f"logging.file: '{target}' is invalid" in result.stderr
        assert "not writable" in result.stderr or "permission denied" in result.stderr
        assert "Traceback" not in result.stderr
        assert time.monotonic() - started < 30
    assert sorted(p.name for p in readonly.iterdir()) == ["old.log"]


@pytest.mark.parametrize("key", ["rotation", "retention"])
def test_a_rotation_or_retention_loguru_cannot_parse(key: str) -> None:
    """'garbage' is named with the key and examples of what loguru understands."""
    text = problems_of(overrides={f"logging.{key}": "garbage"})
    assert f"logging.{key}: 'garbage' is invalid: loguru cannot parse this {key}" in text


def test_rotation_and_retention_that_loguru_understands() -> None:
    """The documented examples work, '10 files' included (kept as the number of files)."""
    loaded = load_settings(
        Settings, overrides={"logging.rotation": "100 MB", "logging.retention": "10 files"}
    )
    assert loaded.settings.logging.retention == 10
    for rotation, retention in [("1 day", "7 days"), ("00:00", "1 week"), ("monday at 12:00", 3)]:
        overrides = {"logging.rotation": rotation, "logging.retention": retention}
        load_settings(Settings, overrides=overrides)


# -- database URLs --------------------------------------------------------------------------------

PASSWORD = "Sup3r-planted-pw"


def test_an_unparsable_database_url_never_echoes_its_password() -> None:
    """`u:pw@nohost`: cannot be parsed; the error shows the URL masked, the password nowhere."""
    text = problems_of(overrides={"database.url": f"u:{PASSWORD}@nohost"})
    assert "database.url: 'u:***@nohost' is invalid: cannot be parsed as a database URL" in text
    assert PASSWORD not in text
    short = problems_of(overrides={"database.url": "u:pw@nohost"})
    assert ":pw@" not in short


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"postgres://app:{PASSWORD}@127.0.0.1/db", "write postgresql+asyncpg://"),
        (
            f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1/db?sslmode=require",
            "write ?ssl=require",
        ),
        (f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:port/db", "the port is not a number"),
        (f"nosuchdb+driver://app:{PASSWORD}@127.0.0.1/db", "SQLAlchemy has no dialect"),
        (f"postgresql+asyncpg://app@127.0.0.1/db?sslmode=require&password={PASSWORD}", "ssl="),
    ],
)
def test_database_url_mistakes_have_hints(
    monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    """Each common mistake names the key, the masked URL, the env var, and the fix."""
    monkeypatch.setenv("APP_DATABASE__URL", url)
    text = problems_of()
    assert "database.url: " in text
    assert message in text
    assert "(from env APP_DATABASE__URL)" in text
    assert PASSWORD not in text


@pytest.mark.parametrize(
    ("url", "package"),
    [
        ("mysql+aiomysql://app@127.0.0.1/db", "aiomysql"),
        ("postgresql+psycopg://app@127.0.0.1/db", "psycopg"),
        ("mssql+aioodbc://app@127.0.0.1/db", "aioodbc"),
    ],
)
def test_a_driver_that_is_not_installed_names_the_package(url: str, package: str) -> None:
    """The driver's module is looked up without importing it; the fix names the package."""
    module = "psycopg" if package == "psycopg" else package
    if importlib.util.find_spec(module) is not None:
        pytest.skip(f"{module} is installed here")
    text = problems_of(overrides={"database.url": url})
    assert "is not installed: pip install " + package in text


def test_asyncpg_missing_names_the_extra() -> None:
    """For asyncpg the hint also names the framework's extra."""
    if importlib.util.find_spec("asyncpg") is None:
        assert "pip install asyncpg (or framework[postgres])" in (
            url_problem("postgresql+asyncpg://h/db") or ""
        )
    else:
        assert url_problem("postgresql+asyncpg://h/db") is None


@pytest.mark.parametrize(
    "url",
    [
        "sqlite+aiosqlite:///./app.db",
        "sqlite+aiosqlite://",
        "sqlite:///x.db",
        "postgresql+asyncpg://app@127.0.0.1:5432/db?ssl=require",
        "postgresql+asyncpg://app@[::1]:5432/db",
    ],
)
def test_good_database_urls_pass(url: str) -> None:
    """What works today keeps working."""
    assert load_settings(Settings, overrides={"database.url": url}).settings.database.url == url


def test_importing_the_url_checks_does_not_import_sqlalchemy() -> None:
    """`import framework` stays cheap: the URL checks import SQLAlchemy only for unknown dialects."""
    code = (
        "import sys, framework._config.load, framework._config.settings;"
        "from framework._config.dburl import url_problem;"
        "url_problem('postgresql+asyncpg://h/db');"
        "print('sqlalchemy' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=framework_env(), capture_output=True, text=True
    )
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.slow
def test_config_show_and_check_mask_every_url_password_form(tmp_path: Path) -> None:
    """A `password=` query parameter in config show; a bare user:pw@ in check's error."""
    query = f"postgresql+asyncpg://app@127.0.0.1/db?password={PASSWORD}"
    shown = run_cli(
        tmp_path, "config", "show", "tests.sample_apps:App", env={"APP_DATABASE__URL": query}
    )
    assert shown.returncode == 0, shown.stderr
    assert "password=***" in shown.stdout
    assert PASSWORD not in shown.stdout + shown.stderr
    bare = f"app:{PASSWORD}@127.0.0.1/db"
    checked = run_cli(tmp_path, "check", "tests.sample_apps:App", env={"APP_DATABASE__URL": bare})
    assert checked.returncode == 78
    assert "database.url: 'app:***@127.0.0.1/db' is invalid" in checked.stderr
    assert PASSWORD not in checked.stdout + checked.stderr
    assert "Traceback" not in checked.stderr


# -- environments, files read, unknown sections --------------------------------------------------


def test_the_files_read_in_order(tmp_path: Path) -> None:
    """`files` lists default then the environment's file."""
    write(tmp_path / "config/default.toml", "[http]\nport = 1\n")
    write(tmp_path / "config/prod.yaml", "http:\n  port: 2\n")
    loaded = load_settings(Settings, env="prod")
    assert loaded.files == [Path("config/default.toml"), Path("config/prod.yaml")]
    assert loaded.warnings == []


def test_an_environment_without_a_file_is_a_warning_or_with_require_an_error(
    tmp_path: Path,
) -> None:
    """`--env prodution`: a warning naming the environments that have files (with a
    did-you-mean); `require_env_file=True` (check) makes it a problem."""
    write(tmp_path / "config/default.toml", "[http]\nport = 1\n")
    write(tmp_path / "config/production.toml", "[http]\nport = 2\n")
    write(tmp_path / "config/staging.yaml", "http:\n  port: 3\n")
    loaded = load_settings(Settings, env="prodution")
    assert loaded.files == [Path("config/default.toml")]
    assert loaded.settings.http.port == 1
    (warning,) = loaded.warnings
    assert "environment 'prodution' (from --env): there is no config/prodution.toml or .yaml" in (
        warning
    )
    assert "only config/default.toml applies" in warning
    assert "environments with files: production, staging; did you mean 'production'?" in warning
    with pytest.raises(ConfigError, match=r"there is no config/prodution\.toml"):
        load_settings(Settings, env="prodution", require_env_file=True)


def test_an_environment_from_app_env_and_no_config_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APP_ENV is named as the origin; run from the wrong folder, the warning says so."""
    monkeypatch.setenv("APP_ENV", "prod")
    (warning,) = load_settings(Settings).warnings
    assert "environment 'prod' (from env APP_ENV): there is no config directory 'config'" in warning
    assert "run from the project folder, or pass --config-dir" in warning


def test_without_an_environment_there_is_no_warning(tmp_path: Path) -> None:
    """No env, no config dir: nothing to warn about (defaults are a valid configuration)."""
    assert load_settings(Settings).warnings == []


def test_an_unknown_section_names_its_file_and_the_settings_class(tmp_path: Path) -> None:
    """`[worker]` with the app's `settings_class` forgotten: the real source and the fix."""
    write(tmp_path / "config/default.toml", "[worker]\nconcurrency = 4\n")
    text = problems_of()
    assert (
        "worker: unknown section (from config/default.toml); the settings class "
        "framework.Settings does not define `worker`: set `settings_class` on your Application "
        "to a Settings subclass with a `worker` field"
    ) in text
    assert "(from default)" not in text


def test_an_unknown_section_of_an_app_settings_class(tmp_path: Path) -> None:
    """With an app's own settings class, the hint names that class."""
    write(tmp_path / "config/default.yaml", "worker:\n  concurrency: 4\n")
    with pytest.raises(ConfigError) as info:
        load_settings(SampleSettings)
    assert "tests.sample_apps.SampleSettings does not define `worker`" in str(info.value)
    assert "(from config/default.yaml)" in str(info.value)


def test_unknown_keys_name_their_real_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """A misspelt section keeps its did-you-mean; env vars and overrides are named."""
    monkeypatch.setenv("APP_LIFECYCLE__BOGUS", "1")
    text = problems_of(overrides={"lifecyle": {"stop_timeout": 1}})
    assert "lifecyle: unknown setting; did you mean 'lifecycle'? (from override lifecyle)" in text
    assert "lifecycle.bogus: unknown setting (from env APP_LIFECYCLE__BOGUS)" in text


def test_variables_for_a_section_the_settings_class_lacks_are_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`APP_WORKER__CONCURRENCY` is ignored by the loader: say so (a warning, since other tools
    may share the prefix), with a did-you-mean or the settings_class hint."""
    monkeypatch.setenv("APP_WORKER__CONCURRENCY", "4")
    monkeypatch.setenv("APP_LIFECYLE__STOP_TIMEOUT", "3")
    monkeypatch.setenv("APP_NAME", "not nested: not ours to judge")
    assert load_settings(Settings).warnings == [
        "APP_LIFECYLE__STOP_TIMEOUT: ignored, the settings class framework.Settings has no "
        "section `lifecyle`; did you mean 'lifecycle'?",
        "APP_WORKER__CONCURRENCY: ignored, the settings class framework.Settings has no section "
        "`worker`; set `settings_class` on your Application to a subclass that has it",
    ]


@pytest.mark.slow
def test_check_reports_hostile_files_and_unknown_sections(tmp_path: Path) -> None:
    """The real CLI: exit 78, the file or key named, no traceback, in bounded time."""
    cases = {
        "default.yaml": (BOMB, "config/default.yaml: expands to more than"),
        "default.toml": ("a = " + "[" * 5000 + "]" * 5000, "config/default.toml: values are"),
    }
    for name, (text, message) in cases.items():
        shutil.rmtree(tmp_path / "config", ignore_errors=True)
        write(tmp_path / "config" / name, text)
        started = time.monotonic()
        result = run_cli(tmp_path, "check", "tests.sample_apps:App")
        assert result.returncode == 78, result.stderr
        assert message in result.stderr
        assert "Traceback" not in result.stderr
        assert time.monotonic() - started < 30  # the parse itself is milliseconds; see above
    shutil.rmtree(tmp_path / "config")
    write(tmp_path / "config/default.toml", "[worker]\nconcurrency = 4\n")
    result = run_cli(tmp_path, "check", "tests.sample_apps:App")
    assert result.returncode == 78
    assert "worker: unknown section (from config/default.toml)" in result.stderr


# -- fuzzing: hostile shapes end in a loaded config or a ConfigError, quickly ----------------------

nesting = st.recursive(
    st.sampled_from(["1", "x", "inf", "*a", "&a 1", "null", "~", "'q'"]),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + ", ".join(xs) + "]"),
        st.lists(
            st.tuples(st.sampled_from(["k", "stop_timeout", "*a", "<<"]), inner), max_size=3
        ).map(lambda kvs: "{" + ", ".join(f"{k}: {v}" for k, v in kvs) + "}"),
        inner.map(lambda x: f"&a {x}"),
    ),
    max_leaves=40,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    section=st.sampled_from(["lifecycle", "database", "services", "worker"]),
    body=nesting,
    depth=st.integers(0, 60),
    data=st.binary(max_size=80),
    as_bytes=st.booleans(),
    suffix=st.sampled_from([".toml", ".yaml"]),
)
def test_fuzzed_hostile_shapes_never_crash(
    tmp_path: Path, section: str, body: str, depth: int, data: bytes, as_bytes: bool, suffix: str
) -> None:
    """Random anchors, aliases, merge keys, deep brackets and raw bytes: loaded or ConfigError."""
    config = tmp_path / "fuzz"
    shutil.rmtree(config, ignore_errors=True)
    if as_bytes:
        content: str | bytes = data
    elif suffix == ".yaml":
        content = f"{section}: {'[' * depth}{body}{']' * depth}\n"
    else:
        content = f"{section} = {'[' * depth}1{']' * depth}\n"
    write(config / f"default{suffix}", content)
    started = time.monotonic()
    with contextlib.suppress(ConfigError):  # anything else fails the test
        load_settings(SampleSettings, config_dir=config)
    assert time.monotonic() - started < 1.0


@pytest.mark.slow
@pytest.mark.parametrize("where", ["dangling link", "/sys"])
def test_a_log_file_that_cannot_be_opened_is_a_config_error(tmp_path: Path, where: str) -> None:
    """A dangling link into a missing directory, a path under /sys: `check` and `run` exit 78
    with one line naming the key and the path, no traceback, nothing started."""
    if where == "dangling link":
        (tmp_path / "app.log").symlink_to(tmp_path / "gone" / "app.log")
        target = "app.log"
    else:
        if not Path("/sys/kernel").is_dir():
            pytest.skip("no /sys here")
        target = "/sys/kernel/app.log"
    for command in ("check", "run"):
        result = subprocess.run(
            [
                *(sys.executable, "-m", "framework", command),
                "tests.sample_apps:App",
                "--set",
                f'logging.file="{target}"',
            ],
            cwd=tmp_path,
            env=framework_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 78, result.stderr
        assert f"logging.file: '{target}' is invalid" in result.stderr
        assert "Traceback" not in result.stderr and "ExceptionGroup" not in result.stderr
    assert not (tmp_path / "gone").exists()


def test_a_dangling_link_whose_directory_exists_is_fine(tmp_path: Path) -> None:
    """Appending through a link to a file not yet written creates it: that is allowed."""
    (tmp_path / "app.log").symlink_to(tmp_path / "real.log")
    load_settings(Settings, overrides={"logging.file": str(tmp_path / "app.log")})
    assert not (tmp_path / "real.log").exists()
