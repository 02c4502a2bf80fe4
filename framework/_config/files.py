"""Finding and reading configuration files (TOML or YAML), bounded in size, nesting and expansion.

Whatever a file holds, reading it ends quickly with either a mapping of sections or one
`FileProblem` naming the file and what to do: never a traceback, a `RecursionError`, a YAML alias
bomb expanding in memory, or a quadratic parse of ten thousand nested brackets.
"""

from __future__ import annotations

import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

__all__ = (
    "MAX_BYTES",
    "MAX_DEPTH",
    "MAX_VALUES",
    "SUFFIXES",
    "FileProblem",
    "environments",
    "find",
    "read",
    "too_deep",
)

SUFFIXES = (".toml", ".yaml", ".yml")
MAX_BYTES = 256 * 1024  # configuration is small; a bigger file is a mistake (and slow to parse)
MAX_DEPTH = 32  # sections nest two or three levels; 32 leaves room for connect_args and the like
MAX_VALUES = 100_000  # values in one file once YAML aliases are expanded


class FileProblem(Exception):
    """A configuration file that cannot be used; the message names the file."""


def find(directory: Path, stem: str) -> list[Path]:
    """Every ``<directory>/<stem>.toml|.yaml|.yml`` that exists (a broken link counts)."""
    found = []
    for suffix in SUFFIXES:
        path = directory / f"{stem}{suffix}"
        if path.exists() or path.is_symlink():
            found.append(path)
    return found


def environments(directory: Path) -> list[str]:
    """The environments that have a file in ``directory`` (``default`` excluded), sorted."""
    try:
        names = {p.stem for p in directory.iterdir() if p.suffix in SUFFIXES}
    except OSError:
        return []
    return sorted(names - {"default"})


def read(path: Path) -> dict[str, Any]:
    """The sections in ``path``; `FileProblem` when the file is not a usable configuration."""
    text = _text(path)
    data = _parse_toml(path, text) if path.suffix == ".toml" else _parse_yaml(path, text)
    if too_deep(data):
        raise FileProblem(_too_deep_message(path))
    return data


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` (dicts and lists) nests more than ``limit`` levels; not recursive."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep_message(path: Path) -> str:
    return f"{path}: values are nested more than {MAX_DEPTH} levels deep; flatten the file"


def _text(path: Path) -> str:
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise FileProblem(f"{path}: is a directory, not a file; remove or rename it")
        if not stat.S_ISREG(mode):
            raise FileProblem(f"{path}: is not a regular file (a device or a pipe); use a file")
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as exc:
        raise FileProblem(f"{path}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise FileProblem(
            f"{path}: is larger than {MAX_BYTES // 1024} KiB; a configuration file is small, "
            "keep data elsewhere"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise FileProblem(
            f"{path}: is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise FileProblem(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise FileProblem(_too_deep_message(path)) from None


class _BoundedLoader(yaml.SafeLoader):
    """A SafeLoader that refuses to nest deeper than `MAX_DEPTH` while scanning, before the
    composer recurses (and before ten thousand open brackets make the scanner quadratic)."""

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeepError
        super().fetch_flow_collection_start(TokenClass)

    def add_indent(self, column: int) -> bool:
        if len(self.indents) >= MAX_DEPTH:
            raise _TooDeepError
        return bool(super().add_indent(column))


class _TooDeepError(Exception):
    pass


def _parse_yaml(path: Path, text: str) -> dict[str, Any]:
    try:
        data = _load_bounded(path, text)
    except _TooDeepError:
        raise FileProblem(_too_deep_message(path)) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        raise FileProblem(
            f"{path}: invalid YAML: character {chr(exc.character)!r} is not allowed (line {line})"
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (at line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise FileProblem(f"{path}: invalid YAML: {problem}{where}") from None
    if not isinstance(data, dict):
        raise FileProblem(f"{path}: the top level must be a mapping of sections")
    bad = _key_not_text(data)
    if bad is not None:
        key, kind = bad[0], type(bad[0]).__name__
        raise FileProblem(f"{path}: the key {key!r} is not text (YAML read a {kind}); quote it")
    return data


def _key_not_text(data: dict[Any, Any]) -> tuple[Any] | None:
    """The first mapping key that YAML read as a number, a date, a boolean or null, or None."""
    stack: list[Any] = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if not isinstance(key, str):
                    return (key,)
                stack.append(value)
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _load_bounded(path: Path, text: str) -> Any:
    loader = _BoundedLoader(text)  # checks the characters: may raise a YAMLError already
    try:
        node = loader.get_single_node()
        if node is None or (node.tag == "tag:yaml.org,2002:null" and not node.value):
            return {}  # no document, only comments, or an empty document ("---")
        if not isinstance(node, yaml.MappingNode):
            raise FileProblem(f"{path}: the top level must be a mapping of sections")
        _check_expansion(path, node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _check_expansion(path: Path, root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past `MAX_VALUES` values or `MAX_DEPTH` levels,
    or that refers to itself, measured on the node graph without expanding it."""
    measured: dict[int, tuple[int, int]] = {}  # id(node) -> (values, depth) once expanded
    open_: set[int] = set()  # nodes whose children are being measured
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            kids = [measured[id(kid)] for kid in _children(node)]
            values = 1 + sum(v for v, _ in kids)
            depth = 1 + max((d for _, d in kids), default=0)
            if values > MAX_VALUES:
                raise FileProblem(
                    f"{path}: expands to more than {MAX_VALUES} values (YAML aliases?); "
                    "write the values out or make the file smaller"
                )
            if depth > MAX_DEPTH + 1:
                raise FileProblem(_too_deep_message(path))
            measured[id(node)] = (values, depth)
            open_.discard(id(node))
        elif id(node) not in measured:
            open_.add(id(node))
            stack.append((node, True))
            for kid in _children(node):
                if id(kid) in open_:
                    raise FileProblem(f"{path}: a YAML alias refers to itself; remove the loop")
                stack.append((kid, False))


def _children(node: yaml.Node) -> Iterator[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value
    elif isinstance(node, yaml.SequenceNode):
        yield from node.value
