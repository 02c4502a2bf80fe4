"""Other packages' private parts are reached only in `framework._compat`, and only in range.

Every module of ``framework/`` outside ``framework/_compat`` is read with `ast` (nothing is
imported) and must not reach into another package's private part: no ``from x import _name``, no
``import x._private``, no ``a._name`` (nor ``getattr(a, "_name")``) on a name imported from a
third-party package, and none of the names earlier versions reached for (uvicorn's
``server_state``, ``HTTP_PROTOCOLS``, loguru's ``_core``, anyio's ``backend_class`` and
``native_token``, ...). Nowhere in the package is process-wide interpreter state changed for
speed (``gc.freeze``, ``gc.disable``, ``gc.set_threshold``, ``sys.setswitchinterval``).

Each adapter checks its package's installed version when imported, against the range
``pyproject.toml`` declares: outside it, `UnsupportedDependency` says
``framework supports <package> >=A,<B; found C``, and the command line exits 78 with that line.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import re
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework._compat import ADAPTERS, UnsupportedDependency, require, supports
from tests._process import framework_env, run_cli

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "framework"
COMPAT = PACKAGE / "_compat"

NAMED = frozenset(
    {
        "server_state",
        "HTTP_PROTOCOLS",
        "WS_PROTOCOLS",
        "_core",
        "backend_class",
        "native_token",
        "_file_sink",
        "_patched_registry",
        "_get_root",
        "_arg2fixturedefs",
        "EngineTracer",
    }
)
"""Reached for by earlier versions of the framework, or now by an adapter: private to uvicorn,
loguru, anyio, dependency-injector, pytest and OpenTelemetry (a class its documentation does not
name), whatever the object they are read from."""

INTERPRETER_STATE = {"gc": {"freeze", "disable", "set_threshold"}, "sys": {"setswitchinterval"}}
_ATTRIBUTE_FUNCTIONS = {"getattr", "setattr", "hasattr", "delattr"}

# The adapters, by distribution name as pyproject.toml spells it; pytest's is the test plugin's.
DISTRIBUTIONS = {
    "loguru": "loguru",
    "uvicorn": "uvicorn",
    "dependency_injector": "dependency-injector",
    "pytest": "pytest",
    "opentelemetry": "opentelemetry-instrumentation-sqlalchemy",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


DOCUMENTED = frozenset({"os._exit", "sys._getframe", "sys._current_frames"})
"""Names with a leading underscore that the standard library documents as public."""


def _third_party(module: str) -> bool:
    """Another package's module: a third party's or the standard library's (whose private parts,
    ``atexit._run_exitfuncs`` say, are the interpreter's, which changes them between versions)."""
    top = module.split(".")[0]
    return bool(top) and top != "framework"


def _root(node: ast.expr) -> ast.expr:
    """The name an attribute chain starts from (through calls and subscripts)."""
    while True:
        if isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Subscript):
            node = node.value
        else:
            return node


def _imported_names(tree: ast.AST) -> dict[str, str]:
    """Each name an import binds in the module (anywhere in it), and the module it comes from."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.asname or alias.name.split(".")[0]
                names[bound] = alias.name if alias.asname else bound
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _string_prefix(node: ast.expr) -> str | None:
    """The text an attribute name given as a string starts with (a constant, an f-string)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _string_prefix(node.values[0])
    return None


def private_reaches(source: str) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for each reach into another package's private part in ``source``."""
    tree = ast.parse(source)
    imported = {k: v for k, v in _imported_names(tree).items() if _third_party(v)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if _third_party(alias.name) and any(map(_private, alias.name.split("."))):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if not _third_party(node.module):
                continue
            names = [a.name for a in node.names]
            parts = [*node.module.split("."), *names]
            if any(map(_private, parts)) or NAMED.intersection(parts):
                yield node.lineno, f"from {node.module} import {', '.join(names)}"
        elif isinstance(node, ast.Attribute):
            root = _root(node)
            own = isinstance(root, ast.Name) and root.id in ("self", "cls")
            if node.attr in NAMED and not (own and _private(node.attr)):
                yield node.lineno, f"{ast.unparse(node)} (named)"
            elif (
                _private(node.attr)
                and isinstance(root, ast.Name)
                and root.id in imported
                and f"{imported[root.id]}.{node.attr}" not in DOCUMENTED
            ):
                yield node.lineno, f"{ast.unparse(node)} (on {imported[root.id]})"
        elif isinstance(node, ast.Name) and node.id in NAMED and not _private(node.id):
            yield node.lineno, f"{node.id} (named)"  # a module's own _name is its own affair
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
        ):
            prefix = _string_prefix(node.args[1])
            root = _root(node.args[0])
            on_import = isinstance(root, ast.Name) and root.id in imported
            if prefix is not None and (prefix in NAMED or (_private(prefix) and on_import)):
                yield node.lineno, ast.unparse(node)


def interpreter_state_changes(source: str) -> Iterator[tuple[int, str]]:
    """``(line, what)`` for each use of ``gc.freeze`` and the like in ``source``."""
    tree = ast.parse(source)
    bound = _imported_names(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in INTERPRETER_STATE:
            for alias in node.names:
                if alias.name in INTERPRETER_STATE[node.module]:
                    yield node.lineno, f"from {node.module} import {alias.name}"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            module = bound.get(node.value.id, node.value.id)
            if node.attr in INTERPRETER_STATE.get(module, ()):
                yield node.lineno, ast.unparse(node)


def _framework_modules(*, compat: bool) -> Iterator[Path]:
    for path in sorted(PACKAGE.rglob("*.py")):
        if compat or COMPAT not in path.parents:
            yield path


def _found(check: object, paths: Iterator[Path]) -> list[str]:
    assert callable(check)
    return [
        f"{path.relative_to(ROOT)}:{line}: {what}"
        for path in paths
        for line, what in check(path.read_text(encoding="utf-8"))
    ]


# -- the scan -------------------------------------------------------------------------------------


def test_no_private_reach_outside_the_adapters() -> None:
    """Outside ``framework/_compat``, no module reaches into another package's private part."""
    found = _found(private_reaches, _framework_modules(compat=False))
    assert not found, "private parts reached outside framework/_compat:\n" + "\n".join(found)


def test_no_process_wide_interpreter_state_is_changed() -> None:
    """No garbage-collector freezing or thresholds, no switch interval, anywhere."""
    found = _found(interpreter_state_changes, _framework_modules(compat=True))
    assert not found, "interpreter state changed:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "from loguru import logger\nlogger._core.min_level",
        "import loguru\nloguru.logger._core",
        "from loguru._file_sink import FileSink",
        "import loguru._file_sink",
        "from dependency_injector.wiring import _patched_registry",
        "from dependency_injector import wiring as w\nw._patched_registry.get_callable(f)",
        "import uvicorn\nuvicorn.Server(config)._private",
        "def f(server):\n    return server.server_state.connections",
        "from uvicorn.config import HTTP_PROTOCOLS",
        "def f(option):\n    return option._get_root()",
        "from loguru import logger\ngetattr(logger, '_core')",
        "from loguru import FileSink\ngetattr(FileSink, f'_make_{key}_function')",
        "def f(x):\n    return getattr(x, 'native_token')",
        "def f(metafunc):\n    return metafunc._arg2fixturedefs",
        "from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer",
    ],
)
def test_the_scan_sees_a_private_reach(source: str) -> None:
    assert list(private_reaches(source)), source


@pytest.mark.parametrize(
    "source",
    [
        "import os\nos._exit(0)",  # the standard library's documented names are its own affair
        "def f(self):\n    return self._private",
        "from framework._runtime import logs\nlogs._sinks",
        "from .x import _y",
        "from loguru import logger\nlogger.level('INFO').no",
        "def _core(engine):\n    return engine\n_core(x)",  # a module's own private function
    ],
)
def test_the_scan_leaves_the_rest_alone(source: str) -> None:
    assert not list(private_reaches(source)), source


@pytest.mark.parametrize(
    "source",
    [
        "import gc\ngc.freeze()",
        "import gc as g\ng.set_threshold(0)",
        "from gc import disable",
        "import sys\nsys.setswitchinterval(1)",
    ],
)
def test_the_scan_sees_an_interpreter_state_change(source: str) -> None:
    assert list(interpreter_state_changes(source)), source


def test_the_adapters_are_where_the_reaches_are() -> None:
    """The scan, run on the adapters themselves, finds what they are for (it is not blind)."""
    found = "\n".join(_found(private_reaches, iter(sorted(COMPAT.glob("*.py")))))
    for reach in ("_core", "_file_sink", "_patched_registry", "server_state", "HTTP_PROTOCOLS"):
        assert reach in found


# -- the ranges -----------------------------------------------------------------------------------


def _declared_ranges() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    requirements = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    ranges: dict[str, str] = {}
    for requirement in requirements:
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*([^;]*?)\s*(?:;.*)?", requirement)
        assert match is not None, requirement
        ranges[match[1].lower()] = match[2].replace(" ", "")
    return ranges


@pytest.mark.parametrize("adapter", sorted(DISTRIBUTIONS))
def test_each_adapter_checks_the_range_pyproject_declares(adapter: str) -> None:
    module = importlib.import_module(f"framework._compat.{adapter}")
    assert _declared_ranges()[DISTRIBUTIONS[adapter]] == module.SUPPORTED
    assert module.__doc__ and "why" in module.__doc__.splitlines()[0]


def test_the_command_line_checks_every_adapter_of_a_dependency() -> None:
    declared = set(_declared_ranges())
    assert {DISTRIBUTIONS[a] for a in ADAPTERS} <= declared
    # pytest's is the test plugin's; OpenTelemetry's is checked by the telemetry service (an extra)
    assert set(ADAPTERS) == set(DISTRIBUTIONS) - {"pytest", "opentelemetry"}


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("0.32", True),
        ("0.32.0", True),
        ("0.32.0.post1", True),
        ("0.40.2", True),
        ("0.54.9", True),
        ("0.54.1rc1", True),
        ("0.54.0+local", True),
        ("0.31.9", False),
        ("0.32.0rc1", False),
        ("0.32.0.dev3", False),
        ("0.55", False),
        ("0.55.0", False),
        ("0.55.0a1", False),
        ("1.0.0", False),
        ("unknown", False),
    ],
)
def test_a_version_is_compared_with_the_range(version: str, inside: bool) -> None:
    assert supports(">=0.32,<0.55", version) is inside


@pytest.mark.parametrize(
    ("version", "inside"),
    [
        ("0.66b2", True),
        ("0.66b10", True),
        ("0.66rc1", True),
        ("0.66", True),
        ("0.67b0", True),
        ("0.66b1", False),
        ("0.66a5", False),
        ("0.66.dev1", False),
        ("0.65", False),
        ("1.0b1", False),
    ],
)
def test_a_floor_may_be_a_pre_release(version: str, inside: bool) -> None:
    """OpenTelemetry's instrumentations are only ever released as betas (0.66b2)."""
    assert supports(">=0.66b2,<1", version) is inside


def test_a_range_is_written_one_way() -> None:
    with pytest.raises(ValueError, match="'>=A,<B'"):
        supports("~=0.32", "0.32.0")


@pytest.mark.parametrize(
    ("adapter", "found"), [("uvicorn", "0.55.0"), ("uvicorn", "0.32.0"), ("loguru", "0.7.1")]
)
def test_an_adapter_outside_its_range_fails_when_imported(
    monkeypatch: pytest.MonkeyPatch, adapter: str, found: str
) -> None:
    real = importlib.metadata.version
    package = DISTRIBUTIONS[adapter]
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: found if name == package else real(name)
    )
    name = f"framework._compat.{adapter}"
    monkeypatch.delitem(sys.modules, name, raising=False)  # put back afterwards
    with pytest.raises(UnsupportedDependency) as caught:
        importlib.import_module(name)
    supported = _declared_ranges()[package]
    assert str(caught.value) == f"framework supports {package} {supported}; found {found}"
    assert name not in sys.modules


def test_a_missing_package_is_outside_every_range() -> None:
    with pytest.raises(UnsupportedDependency) as caught:
        require("framework-no-such-package", ">=1,<2")
    assert str(caught.value) == "framework supports framework-no-such-package >=1,<2; found none"


@pytest.mark.slow
@pytest.mark.parametrize("command", ["check", "run"])
def test_the_command_line_exits_78_with_the_one_line(tmp_path: Path, command: str) -> None:
    """An installed uvicorn above the range: before the command does anything else, one line on
    stderr (no traceback) and exit 78."""
    path = _fake_distribution(tmp_path / "site", "uvicorn", "0.55.0")
    result = run_cli(ROOT, command, "tests.sample_apps:App", env={"PYTHONPATH": path})
    assert result.returncode == 78, result.stderr
    assert result.stderr == "framework supports uvicorn >=0.32.1,<0.55; found 0.55.0\n"
    assert result.stdout == ""


def _fake_distribution(site: Path, name: str, version: str) -> str:
    """A ``site`` directory whose metadata says ``name`` ``version``, first on the path."""
    dist = site / f"{name}-{version}.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    return f"{site}:{ROOT}"


def test_an_application_is_not_built_with_a_dependency_outside_its_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Built in code (no command line), the application fails at once, not at its first log
    line or request."""
    from tests.sample_apps import App

    real = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "0.8.0" if name == "loguru" else real(name)
    )
    monkeypatch.delitem(sys.modules, "framework._compat.loguru", raising=False)
    with pytest.raises(
        UnsupportedDependency, match=r"^framework supports loguru >=0\.7\.2,<0\.8; "
    ):
        App()


@pytest.mark.slow
def test_app_main_exits_78_with_the_one_line(tmp_path: Path) -> None:
    """``App.main()``, the command line of one application class, says it the same way."""
    import subprocess

    path = _fake_distribution(tmp_path / "site", "loguru", "0.8.0")
    code = "import sys; from tests.sample_apps import App; sys.argv = ['app']; App.main()"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=framework_env({"PYTHONPATH": path}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 78, result.stderr
    assert result.stderr == "framework supports loguru >=0.7.2,<0.8; found 0.8.0\n"


def test_the_interpreter_adapter_runs_the_exit_handlers_here() -> None:
    """This CPython has the way the command line runs its atexit handlers before ``os._exit``
    (in a process of its own: the handlers of the test session must not run)."""
    import subprocess

    code = (
        "import atexit, os\n"
        "from framework._compat.interpreter import run_exit_handlers\n"
        "atexit.register(print, 'handler ran', flush=True)\n"
        "print(run_exit_handlers(), flush=True)\n"
        "os._exit(0)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["handler ran", "True"]
