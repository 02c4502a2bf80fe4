"""Validation errors told to a person: the dotted key, the value (never a secret), what is wrong,
what to do, and where the value came from."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, SecretBytes, SecretStr, ValidationError
from pydantic_core import ErrorDetails

from framework._config.settings import MAX_SECONDS, Settings
from framework._engine.secrets import Path_, flatten, is_secret_key, redact, secrets_in

__all__ = ("cause", "class_name", "describe", "did_you_mean", "raw_secrets", "show")

SourceOf = Callable[[Path_], object]  # a key's source, printed with str()


def describe(
    settings_class: type[Settings], exc: ValidationError, source_of: SourceOf
) -> list[str]:
    """One line per error: ``key: value is invalid: message (from source)``."""
    out = []
    for error in exc.errors():
        loc = tuple(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            out.append(_unknown(settings_class, loc, error.get("input"), source_of(loc)))
            continue
        key = ".".join(loc) or "(settings)"
        annotation = _model_at(settings_class, loc)[1]
        secret = annotation in (SecretStr, SecretBytes) or is_secret_key(loc)
        value = "value hidden" if secret else f"{show(error.get('input'), loc)} is invalid"
        out.append(f"{key}: {value}: {_message(error)} (from {source_of(loc)})")
    return out


def _message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "less_than_equal" and (error.get("ctx") or {}).get("le") == MAX_SECONDS:
        message += " seconds (7 days)"
    return message


def _unknown(settings_class: type[Settings], loc: Path_, value: Any, source: object) -> str:
    """An unknown key; for an unknown top-level section, say the settings class lacks it."""
    key = ".".join(loc)
    parent = _model_at(settings_class, loc[:-1])[1] if len(loc) > 1 else settings_class
    fields = (
        parent.model_fields if isinstance(parent, type) and issubclass(parent, BaseModel) else {}
    )
    hint = did_you_mean(loc[-1], fields)
    if len(loc) > 1 or hint or not isinstance(value, Mapping):
        return f"{key}: unknown setting{hint} (from {source})"
    if settings_class is Settings:
        fix = (
            f"set `settings_class` on your Application to a Settings subclass with a `{key}` field"
        )
    else:
        fix = f"add a `{key}` field to it, or set `settings_class` to the class that has one"
    return (
        f"{key}: unknown section (from {source}); "
        f"the settings class {class_name(settings_class)} does not define `{key}`: {fix}"
    )


def class_name(settings_class: type[Settings]) -> str:
    """``framework.Settings`` for ours, else the dotted name of the app's class."""
    if settings_class is Settings:
        return "framework.Settings"
    return f"{settings_class.__module__}.{settings_class.__qualname__}"


def raw_secrets(settings_class: type[Settings], merged: Mapping[str, Any]) -> set[str]:
    """Secret values in not-yet-validated input: they must not appear in any error either."""

    def secret_field(path: Path_) -> bool:
        return _model_at(settings_class, path)[1] in (SecretStr, SecretBytes)

    return secrets_in(flatten(merged), secret_field)


def show(value: Any, path: Path_ = ()) -> str:
    """A value as an error shows it: secrets and URL passwords masked, at most 80 characters."""
    text = repr(redact(value, path))
    return text if len(text) <= 80 else text[:77] + "..."


def cause(exc: BaseException) -> str:
    text = str(exc)
    if exc.__cause__ is not None:
        text += f": {exc.__cause__}"
    return text


def did_you_mean(key: str, choices: Any) -> str:
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
