"""Loading settings in layers, remembering where every value came from.

Sources, later wins:

1. field defaults
2. ``<config_dir>/default.toml`` (or ``.yaml``)
3. ``<config_dir>/<env>.toml`` (or ``.yaml``)
4. ``.env`` in the working directory
5. environment variables (``APP_`` prefix, ``__`` nesting)
6. overrides (``App(overrides=...)``, ``--set key=value``)

Each layer is read by pydantic-settings' own sources; the merged values are validated once, and every
problem is reported at once with its dotted key and source.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import yaml
from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_settings import (
    DotEnvSettingsSource,
    EnvSettingsSource,
    SettingsError,
    TomlConfigSettingsSource,
    YamlConfigSettingsSource,
)

from framework.errors import ConfigError
from framework.secrets import (
    Path_,
    flatten,
    is_secret_key,
    mask_text,
    redact,
    secrets_in,
    secrets_of,
)
from framework.settings import Settings

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
    """Validated settings and the source of every value that did not come from a default."""

    settings: S
    sources: dict[Path_, Source] = field(default_factory=dict)
    env: str | None = None
    files: tuple[Path, ...] = ()

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
) -> LoadedSettings[S]:
    """Load and validate ``settings_class`` from every layer; raise `ConfigError` with all problems.

    ``services`` are the names ``services.<name>`` sections may use (all names when omitted).
    """
    layers = _Layers(_Naming.of(settings_class))
    # .env is read first only to learn APP_ENV from it; it is applied in its place below
    dotenv_values = _read_dotenv(settings_class, dotenv, layers)
    env = _resolve_env(env, layers.naming, dotenv_values.pop(layers.naming.env_key, None))
    files = _read_config_files(settings_class, config_dir, env, layers)
    layers.add(_known_dotenv(settings_class, dotenv_values, layers), layers.naming.dotenv_source)
    layers.add(_read_environ(settings_class, layers), layers.naming.env_source)
    _apply_overrides(overrides or {}, layers)
    settings = _validate(settings_class, layers, services)
    return LoadedSettings(settings, layers.sources, env, tuple(files))


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
        layers.problems.append(f"{path}: cannot be read: {_cause(exc)}")
        return {}


def _resolve_env(env: str | None, naming: _Naming, dotenv_env: Any) -> str | None:
    """The environment name: the argument, else ``<prefix>ENV``, else the one in ``.env``."""
    if env is None:
        env = naming.getenv(f"{naming.prefix}ENV") or (str(dotenv_env) if dotenv_env else None)
    return env or None


def _read_config_files(
    settings_class: type[Settings],
    config_dir: str | os.PathLike[str] | None,
    env: str | None,
    layers: _Layers,
) -> list[Path]:
    """Apply ``default`` then ``<env>`` from the config directory; the files read, in order."""
    directory = Path(config_dir) if config_dir is not None else Path("config")
    if config_dir is not None and not directory.is_dir():
        layers.problems.append(f"config directory {str(directory)!r} does not exist (--config-dir)")
        return []
    files: list[Path] = []
    for stem in ["default", *([env] if env else [])]:
        path = _config_file(directory, stem, layers.problems)
        if path is not None:
            files.append(path)
            layers.add(_read_file(settings_class, path, layers.problems), Source("file", str(path)))
    return files


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
            hint = _did_you_mean(key[len(prefix) :], settings_class.model_fields)
            layers.problems.append(f"{key.upper()} (.env): unknown setting{hint}")
    return known


def _read_environ(settings_class: type[Settings], layers: _Layers) -> dict[str, Any]:
    naming = layers.naming
    try:
        return EnvSettingsSource(
            settings_class, env_prefix=naming.prefix, env_nested_delimiter=naming.delimiter
        )()
    except SettingsError as exc:
        layers.problems.append(
            f"environment variables {naming.prefix}*: {_cause(exc)} (complex values must be JSON)"
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
        for path, leaf in flatten(value, keys):
            layers.put(path, leaf, source)


def _validate(settings_class: type[S], layers: _Layers, services: Iterable[str] | None) -> S:
    """The validated settings, or `ConfigError` with every problem found (secrets masked)."""
    problems = layers.problems
    settings: S | None = None
    try:
        settings = settings_class(**layers.merged)
    except ValidationError as exc:
        problems.extend(_describe(settings_class, exc, layers.sources))
    if services is not None:
        section = layers.merged.get("services")
        named = list(section) if isinstance(section, Mapping) else []
        problems.extend(unknown_services(named, list(services), layers.sources))
    if problems or settings is None:
        secrets = _raw_secrets(settings_class, layers.merged)
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
        source = next((v for k, v in sources.items() if k[:2] == ("services", name)), DEFAULT)
        hint = _did_you_mean(name, services)
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
    return key, value


# -- helpers --------------------------------------------------------------------------------------


def _config_file(directory: Path, stem: str, problems: list[str]) -> Path | None:
    found = [directory / f"{stem}{ext}" for ext in (".toml", ".yaml", ".yml")]
    found = [p for p in found if p.is_file()]
    if len(found) > 1:
        problems.append(f"{' and '.join(map(str, found))}: both exist; keep only one")
    return found[0] if found else None


def _read_file(settings_class: type[Settings], path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        if path.suffix == ".toml":
            return TomlConfigSettingsSource(settings_class, toml_file=path)()
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
        if document is not None and not isinstance(document, dict):
            problems.append(f"{path}: the top level must be a mapping of sections")
            return {}
        return YamlConfigSettingsSource(settings_class, yaml_file=path)()
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: invalid TOML: {exc}")
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problems.append(f"{path}: invalid YAML: {getattr(exc, 'problem', None) or exc}{where}")
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{path}: cannot be read: {exc}")
    return {}


def _cause(exc: BaseException) -> str:
    text = str(exc)
    if exc.__cause__ is not None:
        text += f": {exc.__cause__}"
    return text


def _did_you_mean(key: str, choices: Any) -> str:
    close = difflib.get_close_matches(key, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> tuple[type[BaseModel] | None, Any]:
    """The model owning the last key of ``loc`` and that field's annotation, where known."""
    current: Any = model
    owner: type[BaseModel] | None = None
    annotation: Any = None
    for part in loc:
        if isinstance(current, type) and issubclass(current, BaseModel):
            owner = current
            info = current.model_fields.get(str(part))
            if info is None:
                return owner, None
            annotation = current = info.annotation
        else:  # a dict's values: services.<name>
            args = getattr(current, "__args__", ())
            owner, annotation = None, None
            current = args[-1] if args else None
    return owner, annotation


def _describe(
    settings_class: type[Settings],
    exc: ValidationError,
    sources: Mapping[Path_, Source],
) -> list[str]:
    out = []
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        key = ".".join(loc) or "(settings)"
        source = _source_of(sources, loc)
        owner, annotation = _model_at(settings_class, loc)
        if error["type"] == "extra_forbidden":
            choices = owner.model_fields if owner is not None else {}
            parent = _model_at(settings_class, loc[:-1])[1] if len(loc) > 1 else settings_class
            if isinstance(parent, type) and issubclass(parent, BaseModel):
                choices = parent.model_fields
            hint = _did_you_mean(loc[-1], choices)
            out.append(f"{key}: unknown setting{hint} (from {source})")
            continue
        secret = annotation in (SecretStr, SecretBytes) or is_secret_key(loc)
        value = "value hidden" if secret else f"{_show(error.get('input'))} is invalid"
        out.append(f"{key}: {value}: {error['msg']} (from {source})")
    return out


def _raw_secrets(settings_class: type[Settings], merged: Mapping[str, Any]) -> set[str]:
    """Secret values in not-yet-validated input: they must not appear in any error either."""

    def secret_field(path: Path_) -> bool:
        return _model_at(settings_class, path)[1] in (SecretStr, SecretBytes)

    return secrets_in(flatten(merged), secret_field)


def _source_of(sources: Mapping[Path_, Source], path: Path_) -> Source:
    """The source of the longest prefix of ``path`` that was set, else the default."""
    for n in range(len(path), 0, -1):
        if path[:n] in sources:
            return sources[path[:n]]
    return DEFAULT


def _show(value: Any) -> str:
    text = repr(redact(value))
    return text if len(text) <= 80 else text[:77] + "..."
