"""MkDocs hooks: the reference pages are generated from the code at build time.

A page asks for a generated section with a marker on a line of its own:

- ``<!-- generated: settings -->``: every setting of `framework.Settings`, from the models;
- ``<!-- generated: cli -->``: every command and option of ``framework``, from click;
- ``<!-- generated: api -->``: the public Python API (the ``__all__`` of `framework`,
  `framework.services` and `framework.testing`), from signatures and docstrings;
- ``<!-- generated: changelog -->``: ``CHANGELOG.md`` itself (included, not copied), its title left
  out.

Besides, every page's footer names the version (``project.version`` of ``pyproject.toml``, the one
place it is written), and only a page that has a Mermaid diagram loads the site's copy of Mermaid.

The same functions are used by ``tests/test_docs.py``, which checks they cover everything.
"""

from __future__ import annotations

import ast
import dataclasses
import enum
import inspect
import itertools
import re
import textwrap
import tomllib
import types
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from framework._config.defaults import _dict_value_model, _model_of

__all__ = (
    "api_reference",
    "changelog",
    "cli_reference",
    "on_config",
    "on_page_markdown",
    "on_post_page",
    "settings_reference",
    "version",
)

ROOT = Path(__file__).resolve().parent.parent
MERMAID = "js/mermaid.min.js"


def on_config(config: Any) -> Any:
    """The footer names the version the site documents."""
    config["copyright"] = f"framework {version()}"
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Replace each ``<!-- generated: NAME -->`` marker with the generated Markdown."""
    for name, render in GENERATORS.items():
        marker = f"<!-- generated: {name} -->"
        if marker in markdown:
            markdown = markdown.replace(marker, render())
    return markdown


def on_post_page(output: str, page: Any, config: Any) -> str:
    """Load Mermaid (3 MB) on a page that has a diagram, and on no other."""
    if 'class="mermaid"' not in output:
        return output
    from mkdocs.utils import get_relative_url

    script = f'<script src="{get_relative_url(MERMAID, page.url)}"></script>'
    head, body_end, tail = output.rpartition("</body>")
    return f"{head}{script}\n{body_end}{tail}" if body_end else output + script


# -- version and changelog ------------------------------------------------------------------------


def version() -> str:
    """``project.version`` of ``pyproject.toml``: the one place the version is written."""
    with (ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


def changelog() -> str:
    """``CHANGELOG.md`` as it is, without its first-level title (the page has its own)."""
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    return re.sub(r"\A# [^\n]*\n", "", text.lstrip()).lstrip("\n")


# -- settings -------------------------------------------------------------------------------------


def settings_reference(settings_class: type[BaseModel] | None = None) -> str:
    """One table per section: key, type, default, environment variable, meaning."""
    if settings_class is None:
        from framework import Settings

        settings_class = Settings
    config = getattr(settings_class, "model_config", {})
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "__")
    out: list[str] = []
    for name, info in settings_class.model_fields.items():
        section = _model_of(info.annotation)
        values = _dict_value_model(info.annotation)
        if section is not None:
            out += [f"## `{name}`", ""]
            doc = _first_paragraph(section.__doc__)
            if doc:
                out += [_md(doc), ""]
            out += _settings_table(section, (name,), prefix, delimiter)
        elif values is not None:
            out += [f"## `{name}.<name>`", ""]
            if info.description:
                out += [_md(info.description), ""]
            out += _settings_table(values, (name, "<name>"), prefix, delimiter)
        else:
            out += [f"## `{name}`", ""]
            out += _settings_rows([(name, info)], (), prefix, delimiter)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def settings_keys(settings_class: type[BaseModel] | None = None) -> Iterator[tuple[str, str]]:
    """Every (dotted key, environment variable) that `settings_reference` documents."""
    if settings_class is None:
        from framework import Settings

        settings_class = Settings
    config = getattr(settings_class, "model_config", {})
    prefix = str(config.get("env_prefix") or "")
    delimiter = str(config.get("env_nested_delimiter") or "__")
    for name, info in settings_class.model_fields.items():
        section = _model_of(info.annotation) or _dict_value_model(info.annotation)
        path: tuple[str, ...] = (name, "<name>") if _dict_value_model(info.annotation) else (name,)
        if section is None:
            yield name, _env(prefix, delimiter, (name,))
            continue
        for key in section.model_fields:
            yield ".".join((*path, key)), _env(prefix, delimiter, (*path, key))


def _settings_table(
    model: type[BaseModel], path: tuple[str, ...], prefix: str, delimiter: str
) -> list[str]:
    return _settings_rows(list(model.model_fields.items()), path, prefix, delimiter)


def _settings_rows(
    fields: list[tuple[str, FieldInfo]], path: tuple[str, ...], prefix: str, delimiter: str
) -> list[str]:
    # Three columns, the key above its variable and the type above the default: five side by side
    # do not fit the page, and names cut mid-word cannot be read.
    rows = [
        "| key, environment variable | type, default | meaning |",
        "|---|---|---|",
    ]
    for key, info in fields:
        dotted = ".".join((*path, key))
        default = _default(info)
        rows.append(
            f"| `{dotted}`<br>`{_env(prefix, delimiter, (*path, key))}` | "
            f"{_type(info.annotation)}<br>{default} | {_md(info.description or '')} |"
        )
    return rows


def _env(prefix: str, delimiter: str, path: tuple[str, ...]) -> str:
    return (prefix + delimiter.join(path)).upper()


def _default(info: FieldInfo) -> str:
    value = info.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str | Path):
        return f'`"{value}"`'
    if isinstance(value, dict) and not value:
        return "`{}`"
    if isinstance(value, enum.Enum):
        return f"`{value.value!r}`"
    return f"`{value!r}`"


def _type(annotation: Any) -> str:
    return f"`{_type_name(annotation)}`"  # a pipe inside a code span does not split the cell


def _type_name(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Literal:
        return " | ".join(repr(a).replace("'", '"') for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type_name(a) for a in args)}]"
    if annotation is type(None):
        return "None"
    if annotation is typing.Any:
        return "Any"
    return getattr(annotation, "__name__", str(annotation))


# -- CLI ------------------------------------------------------------------------------------------


def _commands() -> Iterator[tuple[Any, Any]]:
    """Every command of ``framework`` with its click context, depth first."""
    import click

    from framework._cli.commands import cli

    def visit(
        command: click.Command, parent: click.Context | None, name: str
    ) -> Iterator[tuple[click.Command, click.Context]]:
        ctx = click.Context(command, info_name=name, parent=parent, **command.context_settings)
        yield command, ctx
        if isinstance(command, click.Group):
            for sub in command.list_commands(ctx):
                child = command.get_command(ctx, sub)
                if child is not None:
                    yield from visit(child, ctx, sub)

    yield from visit(cli, None, "framework")


def cli_reference() -> str:
    """Every command of ``framework``: usage, help and a table of options, from click itself."""
    out: list[str] = []
    for command, ctx in _commands():
        if not command.hidden:
            out.extend(_command_section(command, ctx))
    return "\n".join(out).rstrip() + "\n"


def cli_commands() -> list[str]:
    """Full names of every command, e.g. ``framework config show``."""
    return [ctx.command_path for _, ctx in _commands()]


def _command_section(command: Any, ctx: Any) -> list[str]:
    import click

    path = ctx.command_path
    level = "#" * min(2 + path.count(" "), 4)
    out = [f"{level} `{path}`", ""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    out += ["```text", f"{path} {usage}".rstrip(), "```", ""]
    if command.help:
        out += [_md(inspect.cleandoc(command.help)), ""]
    arguments = [p for p in command.params if isinstance(p, click.Argument)]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    if arguments:
        out += [
            "Arguments: " + ", ".join(f"`{a.human_readable_name}`" for a in arguments) + ".",
            "",
        ]
    if options:
        out += ["| option | value | default | meaning |", "|---|---|---|---|"]
        for option in options:
            names = ", ".join(f"`{n}`" for n in [*option.opts, *option.secondary_opts])
            value = "flag" if option.is_flag else f"`{_metavar(option, ctx)}`"
            if option.multiple:
                value += ", repeatable"
            default = option.get_default(ctx, call=False)
            unset = (
                default is None or default in (False, ()) or "Sentinel" in type(default).__name__
            )
            shown = "" if unset or option.is_flag else f"`{default}`"
            out.append(f"| {names} | {value} | {shown} | {_escape_pipes(_md(option.help or ''))} |")
        out.append("")
    if isinstance(command, click.Group):
        subs = [f"`{path} {name}`" for name in command.list_commands(ctx)]
        out += ["Commands: " + ", ".join(subs) + ".", ""]
    return out


def _metavar(option: Any, ctx: Any) -> str:
    try:
        return str(option.make_metavar(ctx))
    except TypeError:  # click before 8.2 takes no context
        return str(option.make_metavar())


# -- API ------------------------------------------------------------------------------------------

# The public modules, in the order the page shows them. Their `__all__` is the public API: the page
# lists exactly those names, each under the path users import it from.
PUBLIC_MODULES = ("framework", "framework.services", "framework.testing")

# How the page groups each module's names (a heading and its names, in order). A public name not
# grouped here still appears, under "More"; a name here that its module does not export is an error.
GROUPS: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {
    "framework": (
        ("The application", ("Application", "Service", "ServiceState", "ExitCode")),
        ("Settings", ("Settings", "LifecycleSettings", "ServiceSettings", "ProcessSettings")),
        (
            "Errors",
            (
                "FrameworkError",
                "ConfigError",
                "DependencyCycleError",
                "ServiceError",
                "StartupError",
                "ShutdownError",
            ),
        ),
        (
            "Events",
            (
                "Event",
                "EventHandler",
                "Bound",
                "Phase",
                "Outcome",
                "ServiceStarting",
                "ServiceStarted",
                "ServiceStartFailed",
                "ServiceStopping",
                "ServiceStopped",
                "ServiceStopFailed",
                "ServiceCrashed",
                "ServiceRestarting",
                "ServiceRestarted",
                "ServiceHealthChanged",
                "StartupFinished",
                "RollingBack",
                "ShutdownStarted",
                "ShutdownFinished",
            ),
        ),
    ),
    "framework.services": (
        (
            "Built-in services",
            (
                "HttpService",
                "HttpSettings",
                "DatabaseService",
                "DatabaseSettings",
                "LoggingSettings",
            ),
        ),
    ),
    "framework.testing": (
        ("Testing kit", ("run_app", "run_app_sync", "Harness", "EventSpy", "LeakError")),
    ),
}

# What a public name is, for the few whose object cannot carry a docstring (type aliases) or does not
# have one yet. The object's own docstring wins whenever it has one.
SUMMARIES: dict[str, str] = {
    "framework.Event": "Any lifecycle event: the union of the event classes below.",
    "framework.EventHandler": (
        "What `Application.subscribe` takes: a quick, synchronous callable given each `Event`."
    ),
    "framework.Phase": "The phase of a service an event is about: `start`, `stop` or `run`.",
    "framework.Outcome": (
        "How a phase ended: `ok`, `failed`, `timed out`, `cancelled` or `never started`."
    ),
    "framework.ServiceStarting": "A service's `start()` began.",
    "framework.ServiceStarted": "A service's `start()` returned, after `duration` seconds.",
    "framework.ServiceStopping": "A service's `stop()` began.",
    "framework.ServiceStopped": "A service's `stop()` returned, after `duration` seconds.",
    "framework.StartupFinished": (
        "Startup ended after `duration` seconds: every service started (`ok`), or it failed."
    ),
    "framework.ShutdownFinished": (
        "Shutdown ended after `duration` seconds; `ok` when every stop succeeded."
    ),
}


# What a field or an enum member means, where the code has no docstring under it: by
# ``Class.member`` first, then by the member's name alone (fields of the same name mean the same in
# every event). The attribute's own docstring wins; a member described nowhere is an error.
MEMBERS: dict[str, str] = {
    "ServiceState.CREATED": "constructed; `start()` has not begun",
    "ServiceState.STARTING": "`start()` is running",
    "ServiceState.STARTED": "`start()` returned: the service serves",
    "ServiceState.STOPPING": "`stop()` is running",
    "ServiceState.STOPPED": "`stop()` returned",
    "ServiceState.FAILED": "its start, run or stop failed",
    "Phase.START": "the service's `start()`",
    "Phase.STOP": "the service's `stop()`",
    "Phase.RUN": "the service's `run()` body",
    "Outcome.OK": "it returned in time",
    "Outcome.FAILED": "it raised",
    "Outcome.TIMED_OUT": "it was still running at its bound, and was cancelled",
    "Outcome.CANCELLED": "it was cancelled (shutdown, or another service failed)",
    "Outcome.NEVER_STARTED": "it never began (an earlier failure stopped the startup)",
    "Bound.seconds": "the bound in seconds; `None`: unbounded",
    "Bound.source": "the setting the bound came from, e.g. `services.db.stop_timeout`",
    "RollingBack.reason": "why the startup is rolled back",
    "RollingBack.services": "the services being stopped, in order",
    "RollingBack.raised": "the service whose `start()` raised, when that is the reason",
    "ShutdownStarted.reason": "why: the signal, or the reason given to `request_shutdown`",
    "ShutdownStarted.delay": "the shutdown delay about to be served (0: none, or forced)",
    "ServiceHealthChanged.healthy": "the new result of `health()`",
    "ServiceHealthChanged.reason": "why it is unhealthy (empty when healthy)",
    "Harness.app": "the running application",
    "Harness.events": "every event the application emitted so far",
    "EventSpy.events": "the events received, in order",
    "service": "the service's name (its provider's name in the container)",
    "duration": "seconds the phase took",
    "outcome": "how the phase ended",
    "bound": "the time bound that applied, and its setting",
    "error": "the exception it raised",
    "attempt": "the restart's number, from 1",
    "backoff": "seconds waited before this restart",
    "task": "the spawned task's name",
    "ok": "`true` when every service succeeded",
    "reason": "why, in words",
}


def _member_meaning(cls: type, name: str, attr_docs: dict[str, str]) -> str:
    meaning = attr_docs.get(name) or MEMBERS.get(f"{cls.__name__}.{name}") or MEMBERS.get(name)
    if not meaning:
        raise LookupError(
            f"{cls.__name__}.{name} is not described: a docstring under it, or docs/hooks.py MEMBERS"
        )
    return _escape_pipes(_inline(meaning))


def api_sections() -> list[tuple[str, str, list[tuple[str, Any]]]]:
    """(module, heading, [(name, object)]) in page order: every name of every public ``__all__``."""
    import importlib

    sections: list[tuple[str, str, list[tuple[str, Any]]]] = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        exported = list(module.__all__)
        grouped: set[str] = set()
        for heading, names in GROUPS.get(module_name, ()):
            unknown = [name for name in names if name not in exported]
            if unknown:
                raise LookupError(f"{module_name} does not export {unknown} (docs/hooks.py GROUPS)")
            grouped.update(names)
            sections.append((module_name, heading, [(n, getattr(module, n)) for n in names]))
        rest = [name for name in exported if name not in grouped]
        if rest:
            sections.append((module_name, "More", [(n, getattr(module, n)) for n in rest]))
    return sections


def api_reference() -> str:
    """The public API: per group a table of names, then each name's signature and docstring."""
    public = _public_objects()
    out: list[str] = []
    for module_name, heading, objects in api_sections():
        out += [f"## {heading}", "", f"Import from `{module_name}`.", ""]
        out += ["| name | what it is |", "|---|---|"]
        for name, obj in objects:
            path = f"{module_name}.{name}"
            anchor = re.sub(r"[^a-z0-9_-]", "", path.lower())
            out.append(f"| [`{path}`](#{anchor}) | {_escape_pipes(_summary(path, obj))} |")
        out.append("")
        for name, obj in objects:
            out += _object_section(module_name, name, obj, public)
    return "\n".join(out).rstrip() + "\n"


def api_names() -> list[str]:
    """``module.name`` of everything `api_reference` documents: exactly the public ``__all__``."""
    return [f"{module}.{name}" for module, _, objects in api_sections() for name, _ in objects]


def _public_objects() -> list[tuple[str, Any]]:
    return [(name, obj) for _, _, objects in api_sections() for name, obj in objects]


def _summary(path: str, obj: Any) -> str:
    """The first paragraph of the object's own docstring, else its entry in `SUMMARIES`."""
    own = _own_doc(obj)
    summary = _inline(own) if own else SUMMARIES.get(path, "")
    if not summary:
        raise LookupError(f"{path} has no docstring: write one (or add it to SUMMARIES)")
    return summary


def _own_doc(obj: Any) -> str | None:
    """The docstring written for ``obj`` itself: not a dataclass's generated one, not its type's."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__")
    elif inspect.isfunction(obj) or inspect.ismethod(obj):
        doc = inspect.getdoc(obj)
    else:
        return None  # an alias: its __doc__ is that of its type (`types.UnionType`, ...)
    if not doc or doc.startswith(f"{getattr(obj, '__name__', '')}("):  # a dataclass's default
        return None
    return str(doc)


def _object_section(
    module_name: str, name: str, obj: Any, public: list[tuple[str, Any]]
) -> list[str]:
    out = [f"### `{module_name}.{name}`", ""]
    own = _own_doc(obj)
    if inspect.isclass(obj):
        out += ["```python", _class_signature(obj), "```", ""]
        out += [_md(inspect.cleandoc(own)), ""] if own else [SUMMARIES[f"{module_name}.{name}"], ""]
        out += _class_members(obj)
    elif callable(obj) and not typing.get_origin(obj):
        out += ["```python", *_function_header(name, obj), "```", ""]
        out += [_md(inspect.cleandoc(own)), ""] if own else [SUMMARIES[f"{module_name}.{name}"], ""]
    else:
        alias = _alias_name(obj, [(n, o) for n, o in public if o is not obj])
        if len(f"{name} = {alias}") > 88 and " | " in alias:  # a long union: one member a line
            first, *more = alias.split(" | ")
            alias = "(\n    " + "\n    | ".join([first, *more]) + "\n)"
        out += ["```python", f"{name} = {alias}", "```", ""]
        out += [SUMMARIES[f"{module_name}.{name}"], ""]
    return out


def _alias_name(annotation: Any, public: list[tuple[str, Any]]) -> str:
    """A type alias spelt with public names (``Callable[[Event], None]``)."""
    for name, obj in public:
        if annotation is obj or (typing.get_origin(obj) and annotation == obj):
            return name
    if isinstance(annotation, list):
        return f"[{', '.join(_alias_name(a, public) for a in annotation)}]"
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_alias_name(a, public) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_alias_name(a, public) for a in args)}]"
    return _type_name(annotation)


def _function_header(name: str, func: Any) -> list[str]:
    wrapped = inspect.unwrap(func)
    signature = _signature(func)
    if inspect.isasyncgenfunction(wrapped):
        return ["@asynccontextmanager", f"async def {name}{signature}"]
    if inspect.isgeneratorfunction(wrapped):
        return ["@contextmanager", f"def {name}{signature}"]
    keyword = "async def" if inspect.iscoroutinefunction(wrapped) else "def"
    return [f"{keyword} {name}{signature}"]


def _public_bases(cls: type) -> list[type]:
    bases: list[type] = []
    for base in cls.__bases__:
        if base is object or base is typing.Generic:
            continue
        if base.__name__.startswith("_"):
            bases += _public_bases(base)
        else:
            bases.append(base)
    return bases


def _init_of(cls: type) -> Any:
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if inspect.isfunction(init):
            return init
    return None


def _class_signature(cls: type) -> str:
    bases = _public_bases(cls)
    base = f"({', '.join(b.__name__ for b in bases)})" if bases else ""
    head = f"class {cls.__name__}{base}"
    plain = issubclass(cls, BaseModel | enum.Enum) or dataclasses.is_dataclass(cls)
    init = None if plain else _init_of(cls)
    if init is None or init is object.__init__:
        return head
    signature = _signature(init, drop_self=True)
    if signature == "() -> None":
        return head
    return f"{head}\n{cls.__name__}{signature.removesuffix(' -> None')}"


def _signature(func: Callable[..., Any], drop_self: bool = False) -> str:
    """``(a: int, *, b: str = 'x') -> None``, annotations unquoted, long ones one per line."""
    try:
        sig = inspect.signature(func)
    except (TypeError, ValueError):
        return "(...)"
    params = list(sig.parameters.values())
    if drop_self and params and params[0].name in ("self", "cls"):
        params = params[1:]
    parts: list[str] = []
    seen_kw_only = False
    for param in params:
        if param.kind is param.KEYWORD_ONLY and not seen_kw_only:
            parts.append("*")
            seen_kw_only = True
        text = param.name
        if param.kind is param.VAR_POSITIONAL:
            text, seen_kw_only = "*" + text, True
        elif param.kind is param.VAR_KEYWORD:
            text = "**" + text
        if param.annotation is not param.empty:
            text += f": {_annotation(param.annotation)}"
        if param.default is not param.empty:
            sep = " = " if param.annotation is not param.empty else "="
            text += f"{sep}{param.default!r}"
        parts.append(text)
    returns = ""
    if sig.return_annotation is not sig.empty:
        returns = f" -> {_annotation(sig.return_annotation)}"
    flat = f"({', '.join(parts)}){returns}"
    if len(flat) <= 88:
        return flat
    inner = "".join(f"\n    {part}," for part in parts)
    return f"({inner}\n){returns}"


def _annotation(annotation: Any) -> str:
    return annotation if isinstance(annotation, str) else _type_name(annotation)


def _class_members(cls: type) -> list[str]:
    out: list[str] = []
    attr_docs = _attribute_docs(cls)
    if issubclass(cls, enum.Enum):
        out += ["| member | value | meaning |", "|---|---|---|"]
        for member in cls:
            meaning = _member_meaning(cls, member.name, attr_docs)
            out.append(f"| `{member.name}` | `{member.value!r}` | {meaning} |")
        return [*out, ""]
    skip: set[str] = set()
    if dataclasses.is_dataclass(cls):
        fields = [f for f in dataclasses.fields(cls) if not f.name.startswith("_")]
        skip = {f.name for f in dataclasses.fields(cls)}
        if fields:
            out += ["| field | type | meaning |", "|---|---|---|"]
            for f in fields:
                meaning = _member_meaning(cls, f.name, attr_docs)
                out.append(f"| `{f.name}` | `{f.type}` | {meaning} |")
            out.append("")
    if issubclass(cls, BaseModel):
        out += [
            "Fields: " + ", ".join(f"`{k}`" for k in cls.model_fields) + " "
            "(see [Settings](settings.md)).",
            "",
        ]
        for base in cls.__mro__[1:]:
            skip |= set(base.__dict__)
    items: list[str] = []
    for member_name, member in cls.__dict__.items():
        if member_name.startswith("_") or member_name in skip:
            continue
        doc = _inline(attr_docs.get(member_name))
        if isinstance(member, property):
            items.append(_item(f"`{member_name}` *(property)*", _inline(inspect.getdoc(member))))
        elif isinstance(member, classmethod | staticmethod):
            func = member.__func__
            sig = _signature(func, drop_self=True)
            items.append(_item(f"`{cls.__name__}.{member_name}{sig}`", _inline(func.__doc__)))
        elif inspect.isfunction(member):
            wrapped = inspect.unwrap(member)
            sig = _signature(member, drop_self=True)
            if inspect.isasyncgenfunction(wrapped):
                label = f"`async with {member_name}{sig}`"
            elif inspect.iscoroutinefunction(wrapped):
                label = f"`async {member_name}{sig}`"
            else:
                label = f"`{member_name}{sig}`"
            items.append(_item(label, _inline(inspect.getdoc(member))))
        elif doc:
            items.append(_item(f"`{member_name}`", doc))
    if items:
        out += [*items, ""]
    return out


def _item(label: str, doc: str) -> str:
    return f"- {label}: {doc}" if doc else f"- {label}"


def _attribute_docs(cls: type) -> dict[str, str]:
    """Docstrings written under class attributes (``x = 1`` then ``\"\"\"...\"\"\"``)."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    tree = ast.parse(source)
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, following in itertools.pairwise(body):
        doc = following
        is_doc = isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
        if not is_doc or not isinstance(doc.value.value, str):  # type: ignore[attr-defined]
            continue
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                docs[target.id] = inspect.cleandoc(doc.value.value)  # type: ignore[attr-defined]
    return docs


def _inline(doc: str | None) -> str:
    if not doc:
        return ""
    return _md(" ".join(_first_paragraph(doc).split()))


def _first_paragraph(doc: str | None) -> str:
    if not doc:
        return ""
    return inspect.cleandoc(doc).split("\n\n")[0].strip()


_RST_LITERAL = re.compile(r"``(.+?)``")
_ANGLE = re.compile(r"(?<!`)<(?=[a-z])")


def _md(text: str) -> str:
    """Docstring text as Markdown: ``literal`` becomes `literal`; stray ``<`` is escaped."""
    text = _RST_LITERAL.sub(r"`\1`", text)
    parts = text.split("`")
    for i in range(0, len(parts), 2):  # outside code spans only
        parts[i] = _ANGLE.sub("&lt;", parts[i])
    return "`".join(parts)


def _escape_pipes(text: str) -> str:
    """Plain text for a table cell (code spans need no escaping: their pipes do not split cells)."""
    return text.replace("|", "&#124;")


GENERATORS: dict[str, Callable[[], str]] = {
    "settings": settings_reference,
    "cli": cli_reference,
    "api": api_reference,
    "changelog": changelog,
}
