"""Render a settings class as a commented ``default.toml``: every knob, its meaning and default.

``framework config defaults module:App`` prints it; the repository's ``config/default.toml`` and the
app template's are this output, and a test keeps them in sync with the models.
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

__all__ = ("render_defaults",)

_SECONDS = ("timeout", "delay", "grace_period", "recycle", "interval")
_UNSET: Any = object()


def render_defaults(
    settings_class: type[BaseModel], header: str = "", values: BaseModel | None = None
) -> str:
    """A TOML document with every section and field of ``settings_class``, commented.

    With ``values`` (an instance), its values are written, and a value that differs from the
    default says so in its comment.
    """
    lines: list[str] = []
    if header:
        lines += [f"# {line}".rstrip() for line in header.splitlines()] + [""]
    for name, info in settings_class.model_fields.items():
        section = _model_of(info.annotation)
        if section is not None:
            lines.append(f"[{name}]")
            doc = (section.__doc__ or "").strip().splitlines()
            if doc:
                lines.append(f"# {doc[0]}")
            lines.append("")
            current = getattr(values, name, None) if values is not None else None
            for key, field in section.model_fields.items():
                lines += _field(key, field, value=getattr(current, key, _UNSET))
            continue
        value_model = _dict_value_model(info.annotation)
        if value_model is not None:
            lines.append(f"# {info.description or ''}".rstrip())
            lines.append(f"# [{name}.<name>]")
            for key, field in value_model.model_fields.items():
                lines += [line for line in _field(key, field, commented=True) if line]
            lines.append("")
            continue
        lines += _field(name, info, value=getattr(values, name, _UNSET))
    return "\n".join(lines).rstrip() + "\n"


def _field(key: str, info: FieldInfo, commented: bool = False, value: Any = _UNSET) -> list[str]:
    description = info.description or ""
    timed = any(word in key for word in _SECONDS) and "second" not in description.lower()
    unit = " Seconds." if timed else ""
    default = info.get_default(call_default_factory=True)
    if value is not _UNSET and value != default:
        unit += f" Default: {_default_text(default)}."
        default = value
    out = [f"# {description}{unit}".rstrip()]
    literal = _toml(default)
    if literal is None or commented:
        out.append(
            f"# {key} = {literal if literal is not None else '...'}  (default: {_default_text(default)})"
        )
    else:
        out.append(f"{key} = {literal}")
    out.append("")
    return out


def _toml(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(str(_toml(v)) for v in value) + "]"
    return json.dumps(str(value))


def _default_text(value: Any) -> str:
    return "unset" if value is None else str(_toml(value))


def _model_of(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return None


def _dict_value_model(annotation: Any) -> type[BaseModel] | None:
    if typing.get_origin(annotation) is dict:
        args = typing.get_args(annotation)
        if len(args) == 2:
            return _model_of(args[1])
    if isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _dict_value_model(arg)
            if found is not None:
                return found
    return None
