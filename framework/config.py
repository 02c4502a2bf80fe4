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
from collections.abc import Iterable, Iterator, Mapping
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
    problems: list[str] = []
    merged: dict[str, Any] = {}
    sources: dict[Path_, Source] = {}
    environ = {key.upper(): key for key in os.environ}  # upper-case name -> real name
    prefix = str(settings_class.model_config.get("env_prefix") or "")
    delimiter = str(settings_class.model_config.get("env_nested_delimiter") or "__")

    def layer(values: Mapping[str, Any], source_for: Any) -> None:
        for path, value in _leaves(values):
            _put(merged, path, value)
            sources[path] = source_for(path) if callable(source_for) else source_for

    # .env first only to learn APP_ENV from it; it is applied in its place below
    dotenv_values: dict[str, Any] = {}
    dotenv_path = Path(dotenv) if dotenv is not None else None
    if dotenv_path is not None and dotenv_path.is_file():
        try:
            dotenv_values = DotEnvSettingsSource(
                settings_class,
                env_file=dotenv_path,
                env_prefix=prefix,
                env_nested_delimiter=delimiter,
            )()
        except (SettingsError, ValueError) as exc:
            problems.append(f"{dotenv_path}: cannot be read: {_cause(exc)}")
    env_key = f"{prefix}env".lower()
    dotenv_env = dotenv_values.pop(env_key, None)
    if env is None:
        env = _getenv(environ, f"{prefix}ENV") or (str(dotenv_env) if dotenv_env else None)
    env = env or None

    directory = Path(config_dir) if config_dir is not None else Path("config")
    files: list[Path] = []
    if config_dir is not None and not directory.is_dir():
        problems.append(f"config directory {str(directory)!r} does not exist (--config-dir)")
    else:
        for stem in ["default", *([env] if env else [])]:
            path = _config_file(directory, stem, problems)
            if path is None:
                continue
            files.append(path)
            values = _read_file(settings_class, path, problems)
            layer(values, Source("file", str(path)))

    for key in [k for k in dotenv_values if k not in settings_class.model_fields]:
        del dotenv_values[key]  # not ours (no prefix), or a misspelt name of ours
        if key.startswith(prefix.lower()):
            hint = _did_you_mean(key[len(prefix) :], settings_class.model_fields)
            problems.append(f"{key.upper()} (.env): unknown setting{hint}")
    layer(dotenv_values, lambda p: Source("dotenv", _env_name(environ, prefix, delimiter, p)))

    try:
        env_values = EnvSettingsSource(
            settings_class, env_prefix=prefix, env_nested_delimiter=delimiter
        )()
    except SettingsError as exc:
        env_values = {}
        problems.append(
            f"environment variables {prefix}*: {_cause(exc)} (complex values must be JSON)"
        )
    layer(env_values, lambda p: Source("env", _env_name(environ, prefix, delimiter, p)))

    for key, value in (overrides or {}).items():
        keys = tuple(str(key).split("."))
        if not all(keys):
            problems.append(f"override {key!r}: a key is dotted names, like lifecycle.stop_timeout")
            continue
        for sub, leaf in _leaves(value, keys) if isinstance(value, Mapping) else [(keys, value)]:
            _put(merged, sub, leaf)
            sources[sub] = Source("override", f"override {'.'.join(keys)}")

    settings: S | None = None
    try:
        settings = settings_class(**merged)
    except ValidationError as exc:
        problems.extend(_describe(settings_class, exc, sources))
    if services is not None:
        section = merged.get("services")
        named = list(section) if isinstance(section, Mapping) else []
        problems.extend(unknown_services(named, list(services), sources))
    if problems or settings is None:
        secrets = _raw_secrets(settings_class, merged)
        raise ConfigError([mask_text(problem, secrets) for problem in problems])
    return LoadedSettings(settings, sources, env, tuple(files))


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


def _leaves(values: Mapping[str, Any], path: Path_ = ()) -> Iterator[tuple[Path_, Any]]:
    for key, value in values.items():
        sub = (*path, str(key))
        if isinstance(value, Mapping) and value:
            yield from _leaves(value, sub)
        else:
            yield sub, value


def _put(target: dict[str, Any], path: Path_, value: Any) -> None:
    for key in path[:-1]:
        nxt = target.get(key)
        if not isinstance(nxt, dict):
            nxt = target[key] = {}
        target = nxt
    target[path[-1]] = value


def _getenv(environ: Mapping[str, str], name: str) -> str | None:
    """A variable by its name in any case; ``environ`` maps upper-case names to real ones."""
    key = environ.get(name.upper())
    return os.environ.get(key) if key is not None else None


def _env_name(environ: Mapping[str, str], prefix: str, delimiter: str, path: Path_) -> str:
    """The variable that set ``path``: the longest prefix of it that names a variable."""
    for n in range(len(path), 0, -1):
        name = (prefix + delimiter.join(path[:n])).upper()
        if name in environ:
            return environ[name]
    return (prefix + delimiter.join(path)).upper()


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
