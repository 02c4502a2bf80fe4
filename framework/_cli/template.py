"""``framework new``: render the app template (a cookiecutter) into a new service project.

The template is edited in ``app_template/`` at the top of the source tree; every built
distribution carries a copy as ``framework/_app_template`` (see ``setup.py``), so ``framework new``
works from a wheel or a ``pip install <path>`` as well as from an editable checkout.

Every variable is checked before anything is written; the project is rendered into a temporary
folder next to the target and moved into place only once it is complete, so a mistake leaves
nothing behind.
"""

from __future__ import annotations

import difflib
import importlib.util
import json
import keyword
import math
import re
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

import click

from framework._engine.errors import ConfigError

__all__ = (
    "VARIABLES",
    "NewCommand",
    "Variable",
    "framework_requirement",
    "parse_sets",
    "prompt_values",
    "render",
    "requirement_from_direct_url",
    "resolve_values",
    "template_dir",
    "variables_help",
)

_HEADER = "cannot create a project"
_PACKAGE = Path(__file__).resolve().parent.parent  # the framework package
# Folders of the generated project that a package of the same name would collide with.
_RESERVED = frozenset({"tests", "test", "config", "deploy", "build", "dist", "wheels", "site"})


@dataclass(frozen=True)
class _Pattern:
    """A string matching a regular expression; ``hint`` says what is accepted."""

    pattern: str
    hint: str

    def __call__(self, value: str) -> str:
        if not re.fullmatch(self.pattern, value):
            raise ValueError(f"{value!r}: {self.hint}")
        return value


@dataclass(frozen=True)
class _Choice:
    choices: tuple[str, ...]

    def __call__(self, value: str) -> str:
        if value not in self.choices:
            raise ValueError(f"{value!r}: expected one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True)
class _Seconds:
    """A finite number of seconds, at least 0 (above 0 when ``positive``)."""

    positive: bool = False

    def __call__(self, value: str) -> str:
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number < 0 or (self.positive and number == 0):
            bound = "above 0" if self.positive else "0 or more"
            raise ValueError(f"{value!r}: expected a finite number of seconds, {bound}")
        return value


def _port(value: str) -> str:
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{value!r}: expected a whole number from 1 to 65535, like 8000")
    return str(int(text))


@dataclass(frozen=True)
class Variable:
    """One template variable: its meaning and a check that returns the value or raises ValueError."""

    name: str
    help: str
    check: Callable[[str], str]


VARIABLES: tuple[Variable, ...] = (
    Variable(
        "package_name",
        "Python package of the project",
        _Pattern(r"[a-z_][a-z0-9_]*", "expected a lower-case Python identifier, like acme_orders"),
    ),
    Variable(
        "description",
        "one line for pyproject.toml and the README",
        _Pattern(r'[^"\\\n\r]*', 'expected one line without " or \\'),
    ),
    Variable(
        "python_version",
        "Python version of the Docker image and requires-python",
        _Pattern(r"3\.(1[1-9]|[2-9][0-9])", "expected 3.11 or later, like 3.12"),
    ),
    Variable("web", "web layer of the HTTP service", _Choice(("fastapi", "starlette"))),
    Variable("port", "HTTP port (http.port)", _port),
    Variable(
        "include_database",
        "a DatabaseService (SQLite by default) and an orders table",
        _Choice(("yes", "no")),
    ),
    Variable(
        "env_prefix",
        "prefix of the environment variables, like APP_HTTP__PORT",
        _Pattern(r"[A-Z][A-Z0-9_]*_", "expected upper-case letters, digits and '_', ending in '_'"),
    ),
    Variable(
        "shutdown_delay",
        "lifecycle.shutdown_delay: seconds of not-ready before stopping",
        _Seconds(),
    ),
    Variable(
        "shutdown_timeout",
        "lifecycle.shutdown_timeout: bound of the whole shutdown",
        _Seconds(positive=True),
    ),
    Variable(
        "framework_requirement",
        "how the project depends on framework",
        _Pattern(r'[^"\\\n\r]+', 'expected a pip requirement without " or \\'),
    ),
)
_BY_NAME = {variable.name: variable for variable in VARIABLES}
_PROJECT_NAME = _Pattern(
    r"[A-Za-z][A-Za-z0-9_-]*", "use letters, digits, '-' and '_', starting with a letter"
)


def template_dir() -> Path:
    """The template: inside the installed package first, else ``app_template/`` of the source."""
    for candidate in (_PACKAGE / "_app_template", _PACKAGE.parent / "app_template"):
        if (candidate / "cookiecutter.json").is_file():
            return candidate
    raise ConfigError(
        [
            f"the app template was found neither in the installed package ({_PACKAGE / '_app_template'}) "
            f"nor in the source tree ({_PACKAGE.parent / 'app_template'}); reinstall framework "
            "(pip install <wheel or source folder>)"
        ],
        header=_HEADER,
    )


def framework_requirement() -> str:
    """How the new project depends on this framework, installable on this machine.

    An editable checkout or a source tree: its folder. An installation from a wheel file or a
    folder: that file or folder (PEP 610 ``direct_url.json``), when it still exists. Else the
    version, to be found on an index.
    """
    root = _PACKAGE.parent
    if (root / "pyproject.toml").is_file() and (root / "app_template").is_dir():
        return f"framework @ {root.as_uri()}"
    try:
        direct_url = metadata.distribution("framework").read_text("direct_url.json")
        version = metadata.version("framework")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from an unpacked copy
        return "framework"
    return requirement_from_direct_url(direct_url) or f"framework=={version}"


def requirement_from_direct_url(text: str | None) -> str | None:
    """``framework @ <url>`` for a local file or folder named by ``direct_url.json``, if it exists."""
    if not text:
        return None
    try:
        url = str(json.loads(text)["url"])
    except (ValueError, KeyError, TypeError):
        return None
    parsed = urlparse(url)
    if parsed.scheme != "file" or not Path(unquote(parsed.path)).exists():
        return None
    return f"framework @ {url}"


def defaults() -> dict[str, str]:
    """The variables' defaults, from the template's ``cookiecutter.json``."""
    raw = json.loads((template_dir() / "cookiecutter.json").read_text(encoding="utf-8"))
    return {
        key: str(value[0] if isinstance(value, list) else value)
        for key, value in raw.items()
        if key in _BY_NAME
    }


def variables_help() -> str:
    """The variables and their defaults, for ``framework new --help``."""
    try:
        values = defaults()
    except ConfigError:
        values = {}
    lines = ["Template variables (--set VAR=VALUE):", ""]
    for variable in VARIABLES:
        default = values.get(variable.name, "")
        if variable.name == "package_name":
            default = "NAME in lower case, '-' -> '_'"
        elif variable.name == "framework_requirement":
            default = "this installation"
        if isinstance(variable.check, _Choice):
            choices = ", ".join(variable.check.choices)
            lines.append(
                f"  {variable.name}: {variable.help}; one of {choices} [default: {default}]"
            )
        else:
            lines.append(f"  {variable.name}: {variable.help} [default: {default}]")
    return "\n".join(lines)


class NewCommand(click.Command):
    """``framework new``: its ``--help`` ends with the template variables and their defaults."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_epilog(ctx, formatter)
        formatter.write("\n" + variables_help() + "\n")


def parse_sets(sets: Sequence[str]) -> dict[str, str]:
    """``VAR=VALUE`` pairs from ``--set``; a pair without ``=`` or an unknown name is an error."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for item in sets:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            problems.append(f"--set {item!r}: expected VAR=VALUE, like --set port=9000")
        else:
            values[name.strip()] = value
    problems += _unknown(values)
    if problems:
        raise ConfigError(problems, header=_HEADER)
    return values


def _unknown(names: Iterable[str]) -> list[str]:
    problems = []
    for name in names:
        if name not in _BY_NAME:
            close = difflib.get_close_matches(name, list(_BY_NAME), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see framework new --help"
            problems.append(f"--set {name}: unknown template variable; {hint}")
    return problems


def package_name_for(name: str) -> str:
    """The Python package of project ``name``: lower-case, ``-`` and spaces become ``_``."""
    return name.lower().replace("-", "_").replace(" ", "_")


def resolve_values(name: str, given: Mapping[str, str]) -> dict[str, str]:
    """Every variable's value (given, else default), each checked; all problems at once."""
    values = {**defaults(), "package_name": package_name_for(name)}
    values["framework_requirement"] = framework_requirement()
    values["python_version"] = HOST_PYTHON  # the wheels `make wheels` builds are this Python's
    values.update(given)
    problems = []
    try:
        _PROJECT_NAME(name)
    except ValueError as exc:
        problems.append(f"project name {exc}")
    for variable in VARIABLES:
        try:
            values[variable.name] = variable.check(values[variable.name])
        except ValueError as exc:
            problems.append(f"{variable.name}: {exc}")
    if not any(
        p.startswith(("package_name:", "project name", "python_version:")) for p in problems
    ):
        problems += _other_python(values["python_version"])
    if not any(p.startswith(("package_name:", "project name")) for p in problems):
        problems += _shadowing(values["package_name"])
    if problems:
        raise ConfigError(problems, header=_HEADER)
    return values


HOST_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
"""This machine's Python: the default ``python_version`` of a new project."""


def _other_python(version: str) -> list[str]:
    """A ``python_version`` other than this machine's: `make run` and `make wheels` use this
    machine's Python, so the project would not install here, and its wheels (uvloop, pydantic-core,
    ...) would not install in an image of another Python."""
    if version == HOST_PYTHON:
        return []
    return [
        f"python_version: {version} is not this machine's Python ({HOST_PYTHON}): the project's "
        f"`make run` installs it with this Python and `make wheels` builds wheels for it; run "
        f"`framework new` with Python {version}, or leave python_version at {HOST_PYTHON}"
    ]


def _shadowing(package: str) -> list[str]:
    """Why ``package`` cannot be the project's package name, if it cannot."""
    fix = "choose another project name, or --set package_name=..."
    if keyword.iskeyword(package):
        return [f"package {package!r} is a Python keyword; {fix}"]
    if package in _RESERVED:
        return [f"package {package!r} would collide with the project's {package}/ folder; {fix}"]
    if package in sys.stdlib_module_names or package in sys.builtin_module_names:
        return [f"package {package!r} would shadow the standard library module; {fix}"]
    try:
        found = importlib.util.find_spec(package) is not None
    except (ImportError, ValueError):
        found = True
    if found:
        return [f"package {package!r} would shadow the installed package of that name; {fix}"]
    return []


def prompt_values(name: str, given: Mapping[str, str]) -> dict[str, str]:
    """Ask for every variable not given on the command line (each answer checked as it comes)."""
    values = dict(given)
    start = {**defaults(), "package_name": package_name_for(name)}
    for variable in VARIABLES:
        if variable.name in values or variable.name == "framework_requirement":
            continue
        values[variable.name] = click.prompt(
            variable.help, default=start[variable.name], value_proc=_prompt_check(variable)
        )
    return values


def _prompt_check(variable: Variable) -> Callable[[str], str]:
    def check(value: str) -> str:
        try:
            return variable.check(value)
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None

    return check


def render(
    name: str,
    *,
    output_dir: Path = Path("."),
    no_input: bool = False,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """Create ``output_dir/name`` from the template; return its path.

    Raises ``ConfigError`` for any bad input, an existing target or a failed render; in every
    such case nothing is left behind.
    """
    given = dict(extra or {})
    problems = _unknown(given)
    try:
        _PROJECT_NAME(name)
    except ValueError as exc:
        problems.append(f"project name {exc}")
    if problems:
        raise ConfigError(problems, header=_HEADER)
    target = output_dir / name
    if target.exists() or target.is_symlink():
        kind = "folder" if target.is_dir() else "file"
        raise ConfigError(
            [f"{target} already exists (a {kind}); choose another name or --output-dir"],
            header=_HEADER,
        )
    if not no_input:
        given = prompt_values(name, given)
    values = resolve_values(name, given)
    return _render_into_place(values, name, output_dir)


def _render_into_place(values: dict[str, str], name: str, output_dir: Path) -> Path:
    created = [p for p in (output_dir, *output_dir.parents) if not p.exists()]
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=output_dir))
    except OSError as exc:
        _remove_empty(created)
        raise ConfigError(
            [f"cannot create the project in {output_dir}: {exc.strerror or exc}"], header=_HEADER
        ) from None
    try:
        rendered = _cookiecutter({**values, "project_name": name}, staging)
        target = output_dir / name
        if target.exists():
            raise ConfigError([f"{target} appeared while rendering; not replaced"], header=_HEADER)
        rendered.rename(target)
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        _remove_empty(created)


def _remove_empty(folders: Iterable[Path]) -> None:
    for folder in folders:  # deepest first
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _cookiecutter(context: dict[str, str], staging: Path) -> Path:
    try:
        from cookiecutter.exceptions import CookiecutterException
        from cookiecutter.main import cookiecutter
    except ImportError as exc:
        raise ConfigError(
            [f"framework new needs cookiecutter ({exc}); install it: pip install cookiecutter"],
            header=_HEADER,
        ) from None

    config = {  # ignore ~/.cookiecutterrc; keep the replay file out of the home folder
        "replay_dir": str(staging / ".replay"),
        "cookiecutters_dir": str(staging / ".cookiecutters"),
    }
    try:
        path = cookiecutter(
            str(template_dir()),
            no_input=True,
            extra_context=context,
            output_dir=str(staging / "out"),
            default_config=config,
        )
    except (CookiecutterException, OSError) as exc:
        raise ConfigError(
            [f"rendering the template failed: {type(exc).__name__}: {exc}"], header=_HEADER
        ) from exc
    return Path(path)
