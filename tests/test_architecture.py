"""The shape of the package: imports go one way (no cycle), modules and functions stay small.

Every module of ``framework/`` is read with `ast` (nothing is imported). A runtime import is any
``import`` or ``from ... import`` not under ``if TYPE_CHECKING:``; imports inside functions count
(they run, only later). ``from framework import x`` is an import of ``framework.x`` when that is a
module, else of the package ``framework`` itself.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "framework"

MAX_MODULE_LINES = 450
MAX_FUNCTION_LINES = 60
# No exceptions: every module and function is within the limits.
LONG_MODULES: set[str] = set()
LONG_FUNCTIONS: set[str] = set()


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except the bodies of ``if TYPE_CHECKING:`` blocks."""
    found: list[ast.AST] = []
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        found.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))
    return found


def runtime_imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The framework modules ``name`` imports at run time."""
    out: set[str] = set()
    is_package = path.name == "__init__.py"
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m in known and m != name}


def import_graph() -> dict[str, set[str]]:
    found = modules()
    known = set(found)
    return {name: runtime_imports(name, path, known) for name, path in found.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def layers(graph: dict[str, set[str]]) -> dict[str, int]:
    """Each module's layer: 0 imports no framework module, else one above its highest import."""
    out: dict[str, int] = {}

    def layer(node: str) -> int:
        if node not in out:
            out[node] = 1 + max((layer(d) for d in graph[node]), default=-1)
        return out[node]

    for node in graph:
        layer(node)
    return out


def test_the_walk_sees_the_package() -> None:
    """The walk finds the modules and the imports it must judge (a guard against a blind test)."""
    graph = import_graph()
    assert {"framework", "framework._runtime.application", "framework._engine.lifecycle"} <= set(
        graph
    )
    assert "framework._engine.lifecycle" in graph["framework._runtime.application"]
    assert "framework._runtime.application" in graph["framework._cli.commands"]


def test_type_checking_imports_do_not_count_and_function_imports_do() -> None:
    """`if TYPE_CHECKING:` imports may point up; an import inside a function is a real one."""
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from framework._runtime.application import Application\n"
        "def f():\n    from framework._cli.commands import cli\n"
    )
    nodes = _runtime_nodes(ast.parse(source))
    imported = {n.module for n in nodes if isinstance(n, ast.ImportFrom)}
    assert imported == {"typing", "framework._cli.commands"}


def test_cycles_are_found_and_named() -> None:
    """A cycle is reported as the path that closes it."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_runtime_import_cycle() -> None:
    """Imports go one way: no framework module reaches itself through runtime imports."""
    cycle = find_cycle(import_graph())
    assert cycle is None, (
        "runtime import cycle: " + " -> ".join(cycle or []) + "; move the shared part to a "
        "lower module, or import it under `if TYPE_CHECKING:` if only types need it"
    )


def test_no_module_over_the_size_limit() -> None:
    """One concept per module: no module over 450 lines."""
    too_long = {
        name: n
        for name, path in modules().items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
        and name not in LONG_MODULES
    }
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines (split them): {too_long}"


def test_no_function_over_the_size_limit() -> None:
    """No function or method over 60 lines (docstring included)."""
    too_long = {}
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES and f"{name}.{node.name}" not in LONG_FUNCTIONS:
                    too_long[f"{name}.{node.name}"] = lines
    assert not too_long, f"functions over {MAX_FUNCTION_LINES} lines: {too_long}"


def test_the_runner_sits_above_the_engine() -> None:
    """The engine, the events and the pure models never import the runner or the CLI."""
    graph = import_graph()
    level = layers(graph)
    assert (
        level["framework._runtime.application"]
        > level["framework._engine.lifecycle"]
        > level["framework._engine.events"]
    )
    assert level["framework._cli.commands"] > level["framework._runtime.application"]
    upper = {
        "framework._runtime.application",
        "framework._engine.lifecycle",
        "framework._cli.commands",
        "framework",
    }
    for low in (
        "framework._engine.events",
        "framework._engine.errors",
        "framework._config.settings",
        "framework._engine.graph",
    ):
        assert not reachable(graph, low) & upper, (low, reachable(graph, low) & upper)


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in graph[stack.pop()] - seen:
            seen.add(nxt)
            stack.append(nxt)
    return seen
