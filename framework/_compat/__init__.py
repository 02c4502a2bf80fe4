"""Adapters: every reach into another package's private part, one module per package.

A private part is a name that starts with ``_`` or an attribute the package's documentation does
not name. The framework uses such a part only through the adapter of that package
(`framework._compat.loguru`, `framework._compat.uvicorn`, `framework._compat.dependency_injector`,
`framework._compat.pytest`, `framework._compat.opentelemetry`; the interpreter's in `framework._compat.interpreter`, which has no
range of its own and falls back to the ordinary way), and each adapter checks, when it is imported, that the installed
version is inside the range it was written and tested for (its ``SUPPORTED``, the range
``pyproject.toml`` declares). Outside it, the import raises `UnsupportedDependency`::

    framework supports uvicorn >=0.32.1,<0.55; found 0.55.0

and the command line exits 78 with that line. Nothing here does less when a part is missing: the
adapters reach for what they need directly, so a version that lacks it fails loudly.

This package imports nothing from the rest of the framework (it is the lowest layer), and the
packages themselves only when an adapter function is called: importing an adapter costs the
version check alone.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re

__all__ = ("ADAPTERS", "UnsupportedDependency", "check_installed", "require", "supports")

ADAPTERS = ("loguru", "uvicorn", "dependency_injector")
"""The adapters of the framework's own dependencies (`check_installed` imports each). The pytest
adapter is left out: pytest is needed only by the test plugin, which imports it there."""

_RANGE = re.compile(r">=([0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?),<([0-9]+(?:\.[0-9]+)*)")
_RELEASE = re.compile(r"[0-9]+(?:\.[0-9]+)*")
# After the release: a development release, then the pre-releases (a, b, rc and their other
# spellings) come before the release they name; a post-release (.post1, -1, rev) or a local part
# after it, and such a version counts as its release.
_DEV = re.compile(r"[-_.]?dev", re.IGNORECASE)
_PRE = re.compile(r"[-_.]?(a|alpha|b|beta|c|rc|pre|preview)[-_.]?([0-9]*)", re.IGNORECASE)
_PRE_RANK = {"a": 0, "alpha": 0, "b": 1, "beta": 1}  # the rest (c, rc, pre, preview): 2


class UnsupportedDependency(Exception):
    """The installed version of a package is outside the range its adapter supports."""

    def __init__(self, package: str, supported: str, found: str) -> None:
        self.package = package
        self.supported = supported
        self.found = found
        super().__init__(f"framework supports {package} {supported}; found {found}")


def require(package: str, supported: str) -> str:
    """The installed version of ``package`` (a distribution name, as ``pyproject.toml`` spells
    it); `UnsupportedDependency` when it is outside ``supported`` (``">=A,<B"``) or missing."""
    try:
        found = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        raise UnsupportedDependency(package, supported, "none") from None
    if not supports(supported, found):
        raise UnsupportedDependency(package, supported, found)
    return found


def supports(supported: str, version: str) -> bool:
    """Whether ``version`` is inside ``supported``, a range written ``">=A,<B"``.

    Releases compare number by number (``0.32`` is ``0.32.0``). A pre-release or development
    release of the floor (``0.32.0rc1``) is below it; one of a release inside the range is in it;
    none of the ceiling's (``0.55.0rc1``) is. A version that does not begin with a release number
    is outside every range.
    """
    bounds = _RANGE.fullmatch(supported.replace(" ", ""))
    if bounds is None:
        raise ValueError(f"a supported range is written '>=A,<B', not {supported!r}")
    found = _key(version.strip())
    if found is None:
        return False
    floor = _key(bounds.group(1))
    assert floor is not None  # the pattern matched a release
    release, phase = found
    at_floor = _compare(release, floor[0])
    above_floor = at_floor > 0 or (at_floor == 0 and phase >= floor[1])
    return above_floor and _compare(release, _numbers(bounds.group(2))) < 0


def check_installed() -> None:
    """Import every adapter of `ADAPTERS`: `UnsupportedDependency` for the first package outside
    its range. The command line calls it before it does anything else."""
    for name in ADAPTERS:
        importlib.import_module(f"{__name__}.{name}")


def _key(version: str) -> tuple[tuple[int, ...], tuple[int, int]] | None:
    """``(release numbers, phase)`` of ``version``; phase orders what follows the release:
    ``(0, 0)`` a development release, ``(1, rank * 1000 + n)`` a pre-release, ``(2, 0)`` the
    release itself (or a post-release or local version of it). None: no release number."""
    release = _RELEASE.match(version)
    if release is None:
        return None
    numbers, rest = _numbers(release.group()), version[release.end() :]
    if _DEV.match(rest):
        return numbers, (0, 0)
    pre = _PRE.match(rest)
    if pre:
        rank = _PRE_RANK.get(pre.group(1).lower(), 2)
        return numbers, (1, rank * 1000 + int(pre.group(2) or 0))
    return numbers, (2, 0)


def _numbers(release: str) -> tuple[int, ...]:
    return tuple(int(part) for part in release.split("."))


def _compare(a: tuple[int, ...], b: tuple[int, ...]) -> int:
    width = max(len(a), len(b))
    a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
    return (a > b) - (a < b)
