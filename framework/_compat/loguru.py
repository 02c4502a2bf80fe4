"""loguru's private parts the framework uses, and why.

- ``logger._core.min_level``: the lowest level any handler takes, whoever added it (the
  framework's sinks, or an application's own). The lifecycle events per service are skipped
  before a record (or the event itself) is built when no handler would take them, and the final
  timeline is rendered only when one takes INFO. loguru's public API has no way to ask this: it
  lets one add and remove handlers, not list them.
- ``logger._core.handlers``: whether any handler is left once the framework removed its own
  (then warnings go to stderr, as loguru's default handler would send them).
- ``loguru._file_sink.FileSink``: the sink loguru makes for a path (rotation, retention), made
  directly so that the framework can wrap it (a write that fails is reported
  once and counted, and the file is reopened on SIGUSR1), and its parsers of rotation and
  retention, which check the settings before anything is opened.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from framework._compat import require

__all__ = (
    "SUPPORTED",
    "check_retention",
    "check_rotation",
    "file_sink",
    "has_handlers",
    "min_level",
)

SUPPORTED = ">=0.7.2,<0.8"
"""The loguru versions this adapter was written and tested for (``pyproject.toml``'s range)."""

require("loguru", SUPPORTED)


@functools.cache
def _core() -> Any:
    from loguru import logger

    return logger._core  # type: ignore[attr-defined]


def min_level() -> float:
    """The lowest level number any handler takes (infinity when there is no handler)."""
    level: float = _core().min_level
    return level


def has_handlers() -> bool:
    """Whether loguru has any handler at all."""
    return bool(_core().handlers)


def file_sink(path: Path, *, rotation: Any, retention: Any, encoding: str) -> Any:
    """loguru's sink for the file at ``path`` (a ``write``, ``stop`` object), opened now."""
    from loguru._file_sink import FileSink

    return FileSink(path, rotation=rotation, retention=retention, encoding=encoding)  # type: ignore[no-untyped-call]


def check_rotation(value: str) -> None:
    """Raise ValueError, TypeError or OverflowError as loguru would for this rotation; no file
    is touched."""
    from loguru._file_sink import FileSink

    FileSink._make_rotation_function(value)  # type: ignore[no-untyped-call]


def check_retention(value: str) -> None:
    """As `check_rotation`, for a retention."""
    from loguru._file_sink import FileSink

    FileSink._make_retention_function(value)  # type: ignore[no-untyped-call]
