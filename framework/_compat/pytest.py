"""pytest's private parts the framework's test plugin uses, and why.

- ``Metafunc._arg2fixturedefs``: the fixture definitions that serve a test's arguments. The plugin
  runs the framework's async fixtures on asyncio unless the project defines its own
  ``anyio_backend`` fixture; it tells the two apart by the module of the definition that wins
  (anyio's own plugin, or the project's). pytest's public ``Metafunc`` names the fixtures a test
  uses, not where they are defined.
"""

from __future__ import annotations

from typing import Any

from framework._compat import require

__all__ = ("SUPPORTED", "fixture_module")

SUPPORTED = ">=8.3,<10"
"""The pytest versions this adapter was written and tested for (``pyproject.toml``'s range)."""

require("pytest", SUPPORTED)


def fixture_module(metafunc: Any, name: str) -> str | None:
    """The module defining the fixture ``name`` that serves this test (the closest definition
    wins), or None when no fixture of that name serves it."""
    definitions = metafunc._arg2fixturedefs.get(name, ())
    if not definitions:
        return None
    module: str = definitions[-1].func.__module__
    return module
