"""Loading settings in layers, remembering where every value came from.

Sources, later wins:

1. field defaults
2. ``<config_dir>/default.toml`` (or ``.yaml``)
3. ``<config_dir>/<env>.toml`` (or ``.yaml``)
4. ``.env`` in the working directory
5. environment variables (``APP_`` prefix, ``__`` nesting)
6. overrides (``App(overrides=...)``, ``--set key=value``)

``.env`` and the environment are read by pydantic-settings' own sources, the files by
`framework._config.files` (bounded in size, nesting and alias expansion); the merged values are
validated once, and every problem is reported at once with its dotted key and source.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import ValidationError
from pydantic_settings import DotEnvSettingsSource, EnvSettingsSource, SettingsError
from pydantic_settings.sources import InitSettingsSource

from framework._config import files as files_
from framework._config.problems import cause, class_name, describe, did_you_mean, raw_secrets
from framework._config.settings import Settings
from framework._engine.errors import ConfigError
from framework._engine.secrets import Path_, flatten, mask_text, redact, secrets_of

__all__ = (
    "DEFAULT",
    "LoadedSettings",
    "Source",
    "flatten",
    "load_settings",
    "parse_override",
    "redact",
    "secrets_of",
)

S = TypeVar("S", bound=Settings)


@dataclass(frozen=True)
class Source:
    """Where a value came from: ``default``, a file, ``.env``, an environment variable, an override."""

    kind: str
    where: str = ""

    def __str__(self) -> str:
        if self.kind == "env":
            return f"env {self.where}"
        if self.kind == "dotenv":
            return f".env {self.where}" if self.where else ".env"
        return self.where or self.kind


DEFAULT = Source("default")


@dataclass
class LoadedSettings(Generic[S]):
    """Validated settings and the source of every value that did not come from a default.

    ``files`` are the configuration files read, in order; ``warnings`` what is worth telling
    but does not stop a run (an environment without a file of its own, a variable ignored).
    """

    settings: S
    sources: dict[Path_, Source] = field(default_factory=dict)
    env: str | None = None
    files: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def source_of(self, key: str | Path_) -> Source:
        path = tuple(key.split(".")) if isinstance(key, str) else key
        return _source_of(self.sources, path)

    def items(self) -> Iterator[tuple[str, Any, Source]]:
        """Every effective value as (dotted key, value with secrets redacted, source)."""
        for path, value in flatten(self.settings.model_dump(mode="python")):
            yield ".".join(path), redact(value, path), self.source_of(path)


def load_settings(
    settings_class: type[S],
    *,
    config_dir: str | os.PathLike[str] | None = None,
    env: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    dotenv: str | os.PathLike[str] | None = ".env",
    services: Iterable[str] | None = None,
    require_env_file: bool = False,
) -> LoadedSettings[S]:
    """Load and validate ``settings_class`` from every layer; raise `ConfigError` with all problems.

    ``services`` are the names ``services.<name>`` sections may use (all names when omitted).
    An environment without a ``<config_dir>/<env>.toml|.yaml`` is a warning, or a problem with
    ``require_env_file`` (``framework check``).
    """
    layers = _Layers(_Naming.of(settings_class))
    # .env is read first only to learn APP_ENV from it; it is applied in its place below
    dotenv_values = _read_dotenv(settings_class, dotenv, layers)
    env, origin = _resolve_env(env, layers.naming, dotenv_values.pop(layers.naming.env_key, None))
    directory = _config_directory(config_dir, layers)
    files = _read_config_files(settings_class, directory, env, layers) if directory else []
    warnings: list[str] = []
    if env and directory and not files_.find(directory, env):
        missing = _missing_env_file(directory, env, origin, files)
        (layers.problems if require_env_file else warnings).append(missing)
    layers.add(_known_dotenv(settings_class, dotenv_values, layers), layers.naming.dotenv_source)
    layers.add(_read_environ(settings_class, layers), layers.naming.env_source)
    warnings += _ignored_variables(settings_class, layers.naming)
    _apply_overrides(overrides or {}, layers)
    settings = _validate(settings_class, layers, services)
    return LoadedSettings(settings, layers.sources, env, files, warnings)


@dataclass(frozen=True)
class _Naming:
    """How environment variables are named for a settings class."""

    prefix: str
    delimiter: str
    environ: Mapping[str, str]  # upper-case name -> real name, read once per load

    @classmethod
    def of(cls, settings_class: type[Settings]) -> _Naming:
        config = settings_class.model_config
        return cls(
            prefix=str(config.get("env_prefix") or ""),
            delimiter=str(config.get("env_nested_delimiter") or "__"),
            environ={key.upper(): key for key in os.environ},
        )

    @property
    def env_key(self) -> str:
        return f"{self.prefix}env".lower()

    def getenv(self, name: str) -> str | None:
        """A variable by its name in any case."""
        key = self.environ.get(name.upper())
        return os.environ.get(key) if key is not None else None

    def variable(self, path: Path_) -> str:
        """The variable that set ``path``: the longest prefix of it that names a variable."""
        for n in range(len(path), 0, -1):
            name = (self.prefix + self.delimiter.join(path[:n])).upper()
            if name in self.environ:
                return self.environ[name]
        return (self.prefix + self.delimiter.join(path)).upper()

    def dotenv_source(self, path: Path_) -> Source:
        return Source("dotenv", self.variable(path))

    def env_source(self, path: Path_) -> Source:
        return Source("env", self.variable(path))


@dataclass
class _Layers:
    """The values merged so far, the source of each leaf, and the problems found."""

    naming: _Naming
    merged: dict[str, Any] = field(default_factory=dict)
    sources: dict[Path_, Source] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, values: Mapping[str, Any], source: Source | Callable[[Path_], Source]) -> None:
        """Put every leaf of ``values`` over what is there, remembering its source."""
        if files_.too_deep(dict(values)):
            where = source if isinstance(source, Source) else "the environment or .env"
            self.problems.append(f"{where}: values nested more than {files_.MAX_DEPTH} levels")
            return
        for path, value in flatten(values):
            if path:
                self.put(path, value, source(path) if callable(source) else source)

    def put(self, path: Path_, value: Any, source: Source) -> None:
        target = self.merged
        for key in path[:-1]:
            nxt = target.get(key)
            if not isinstance(nxt, dict):
                nxt = target[key] = {}
            target = nxt
        target[path[-1]] = value
        self.sources[path] = source


def _read_dotenv(
    settings_class: type[Settings], dotenv: str | os.PathLike[str] | None, layers: _Layers
) -> dict[str, Any]:
    path = Path(dotenv) if dotenv is not None else None
    if path is None or not path.is_file():
        return {}
    try:
        return DotEnvSettingsSource(
            settings_class,
            env_file=path,
            env_prefix=layers.naming.prefix,
            env_nested_delimiter=layers.naming.delimiter,
        )()
    except (SettingsError, ValueError) as exc:
        layers.problems.append(f"{path}: cannot be read: {cause(exc)}")
    except RecursionError:
        layers.problems.append(f"{path}: a value is nested too deep")
    return {}


def _resolve_env(env: str | None, naming: _Naming, dotenv_env: Any) -> tuple[str | None, str]:
    """The environment name and where it came from: the argument (``--env``), else
    ``<prefix>ENV``, else the one in ``.env``."""
    if env is not None:
        return env or None, "--env"
    variable = f"{naming.prefix}ENV"
    from_environ = naming.getenv(variable)
    if from_environ:
        return from_environ, f"env {naming.environ.get(variable.upper(), variable)}"
    return (str(dotenv_env) if dotenv_env else None), f".env {variable}"


def _config_directory(config_dir: str | os.PathLike[str] | None, layers: _Layers) -> Path | None:
    """The config directory; None (and a problem) when one was given and is not a directory."""
    if config_dir is None:
        return Path("config")
    directory = Path(config_dir)
    if not directory.exists():
        layers.problems.append(f"config directory {str(directory)!r} does not exist (--config-dir)")
        return None
    if not directory.is_dir():
        layers.problems.append(
            f"config directory {str(directory)!r} is not a directory (--config-dir)"
        )
        return None
    return directory


def _read_config_files(
    settings_class: type[Settings], directory: Path, env: str | None, layers: _Layers
) -> list[Path]:
    """Apply ``default`` then ``<env>`` from the config directory; the files read, in order."""
    read: list[Path] = []
    for stem in ["default", *([env] if env else [])]:
        found = files_.find(directory, stem)
        if len(found) > 1:
            layers.problems.append(f"{' and '.join(map(str, found))}: both exist; keep only one")
        if not found:
            continue
        try:
            values = files_.read(found[0])
        except files_.FileProblem as exc:
            layers.problems.append(str(exc))
            continue
        read.append(found[0])
        layers.add(InitSettingsSource(settings_class, values)(), Source("file", str(found[0])))
    return read


def _missing_env_file(directory: Path, env: str, origin: str, read: list[Path]) -> str:
    what = f"environment {env!r} (from {origin})"
    if not directory.is_dir():
        return (
            f"{what}: there is no config directory {str(directory)!r} in {Path.cwd()}; "
            "run from the project folder, or pass --config-dir"
        )
    have = files_.environments(directory)
    applies = f"only {read[0]} applies" if read else "no configuration file applies"
    others = f"environments with files: {', '.join(have)}" if have else "no environment has one"
    return (
        f"{what}: there is no {directory / env}.toml or .yaml, so {applies}; "
        f"{others}{did_you_mean(env, have)}"
    )


def _known_dotenv(
    settings_class: type[Settings], values: dict[str, Any], layers: _Layers
) -> dict[str, Any]:
    """The ``.env`` values of our fields; a misspelt name with our prefix is a problem."""
    prefix = layers.naming.prefix.lower()
    known = {}
    for key, value in values.items():
        if key in settings_class.model_fields:
            known[key] = value
        elif key.startswith(prefix):  # not ours (no prefix), or a misspelt name of ours
            hint = did_you_mean(key[len(prefix) :], settings_class.model_fields)
            layers.problems.append(f"{key.upper()} (.env): unknown setting{hint}")
    return known


def _ignored_variables(settings_class: type[Settings], naming: _Naming) -> list[str]:
    """Nested variables with our prefix (``APP_WORKER__SIZE``) whose section the settings class
    lacks: pydantic-settings ignores them; a warning, as other tools may share the prefix."""
    prefix, delimiter = naming.prefix.upper(), naming.delimiter.upper()
    if not prefix:  # without a prefix every FOO__BAR in the environment would look like ours
        return []
    out = []
    for upper, real in sorted(naming.environ.items()):
        if not upper.startswith(prefix) or delimiter not in upper[len(prefix) :]:
            continue
        section = upper[len(prefix) :].split(delimiter)[0].lower()
        if section and section not in settings_class.model_fields:
            hint = did_you_mean(section, settings_class.model_fields)
            if not hint and settings_class is Settings:
                hint = "; set `settings_class` on your Application to a subclass that has it"
            out.append(
                f"{real}: ignored, the settings class {class_name(settings_class)} has no section "
                f"`{section}`{hint}"
            )
    return out


def _read_environ(settings_class: type[Settings], layers: _Layers) -> dict[str, Any]:
    naming = layers.naming
    try:
        return EnvSettingsSource(
            settings_class, env_prefix=naming.prefix, env_nested_delimiter=naming.delimiter
        )()
    except SettingsError as exc:
        layers.problems.append(
            f"environment variables {naming.prefix}*: {cause(exc)} (complex values must be JSON)"
        )
    except RecursionError:
        layers.problems.append(
            f"environment variables {naming.prefix}*: a value is nested too deep"
        )
    return {}


def _apply_overrides(overrides: Mapping[str, Any], layers: _Layers) -> None:
    for key, value in overrides.items():
        keys = tuple(str(key).split("."))
        if not all(keys):
            layers.problems.append(
                f"override {key!r}: a key is dotted names, like lifecycle.stop_timeout"
            )
            continue
        source = Source("override", f"override {'.'.join(keys)}")
        if files_.too_deep(value):
            layers.problems.append(f"{source}: the value is nested too deep")
            continue
        for path, leaf in flatten(value, keys):
            layers.put(path, leaf, source)


def _validate(settings_class: type[S], layers: _Layers, services: Iterable[str] | None) -> S:
    """The validated settings, or `ConfigError` with every problem found (secrets masked)."""
    problems = layers.problems
    settings: S | None = None
    try:
        settings = settings_class(**layers.merged)
    except ValidationError as exc:
        problems.extend(describe(settings_class, exc, lambda p: _source_of(layers.sources, p)))
    if services is not None:
        section = layers.merged.get("services")
        named = list(section) if isinstance(section, Mapping) else []
        problems.extend(unknown_services(named, list(services), layers.sources))
    if problems or settings is None:
        secrets = raw_secrets(settings_class, layers.merged)
        raise ConfigError([mask_text(problem, secrets) for problem in problems])
    return settings


def unknown_services(
    named: Iterable[str], services: list[str], sources: Mapping[Path_, Source]
) -> list[str]:
    """A problem for each ``services.<name>`` section that names no service."""
    problems = []
    for name in named:
        if name in services:
            continue
        source = _source_of(sources, ("services", name))
        hint = did_you_mean(name, services)
        known = ", ".join(services) or "none"
        problems.append(
            f"services.{name}: no service named {name!r}{hint} (services: {known}) (from {source})"
        )
    return problems


def parse_override(text: str) -> tuple[str, Any]:
    """``key=value`` with the value read as a TOML literal (``2.5`` a float, ``8080`` an int,
    ``true`` a bool, ``"x"`` or bare ``x`` a string, ``[1, 2]`` a list)."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([f"--set {text!r}: expected key=value, like lifecycle.stop_timeout=2.5"])
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    except RecursionError:
        raise ConfigError([f"--set {key}: the value is nested too deep"]) from None
    return key, value


def _source_of(sources: Mapping[Path_, Source], path: Path_) -> Source:
    """The source of the longest prefix of ``path`` that was set, else of a key under it (a
    section set by a file), else the default."""
    for n in range(len(path), 0, -1):
        if path[:n] in sources:
            return sources[path[:n]]
    under = (s for p, s in sources.items() if path and p[: len(path)] == path)
    return next(under, DEFAULT)


def load_app_settings(
    settings_class: type[S],
    services: list[str],
    config_dir: str | os.PathLike[str] | None,
    env: str | None,
    overrides: Mapping[str, Any] | None,
    settings: S | None,
) -> LoadedSettings[S]:
    """An application's settings: given (checked against ``services``, its names), or loaded."""
    if settings is not None:
        problems = unknown_services(settings.services, services, {})
        if problems:
            raise ConfigError(problems)
        return LoadedSettings(settings)
    return load_settings(
        settings_class, config_dir=config_dir, env=env, overrides=overrides, services=services
    )
