"""Dependency-injector wiring seen by the framework: what the wired modules inject, and unwiring.

A container with a ``wiring_config`` wires its modules and packages when it is created: every
function (and method) of those modules whose parameters carry a ``Provide[...]``, ``Provider[...]``
or ``Closing[Provide[...]]`` marker (as a default, inside FastAPI's ``Depends(...)``, or as
``Annotated[...]`` metadata), and every module or class attribute that is such a marker, gets the
container's provider injected when it is called. Request handlers run inside an HTTP service, so
the providers they inject are dependencies of that service: `wired_injections` finds them the way
dependency-injector's own ``wire()`` does (the same members, the same marker extraction, the same
resolution of ``Container.db``, ``"db"`` and ``"container.db"`` ids), without calling or
instantiating anything. Importing the wired modules is fine: wiring itself does it.

`unwire_container` undoes the wiring once an application has stopped.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, cast, get_args, get_origin

from dependency_injector import providers
from dependency_injector import wiring as di_wiring

from framework._engine.errors import GraphError

__all__ = (
    "WiredInjection",
    "unwire_container",
    "uses_wiring",
    "wired_injections",
    "wiring_modules",
)

_CLOSING = cast("type[Any]", di_wiring.Closing)
_MARKERS = cast("tuple[type[Any], ...]", (di_wiring.Provide, di_wiring.Provider, _CLOSING))


@dataclass(frozen=True)
class WiredInjection:
    """One marker found in a wired module, and the container's provider it resolves to."""

    where: str
    """``module:qualname(parameter)`` for a parameter, ``module:qualname`` for an attribute."""
    marker: Any
    provider: Any
    """The container's provider (or a provider derived from it, like ``db.provided.engine``)."""


def uses_wiring(cls: object) -> bool:
    """Whether instances of ``cls`` run wired code: every ``HttpService``, and any class that
    sets ``uses_wiring = True``."""
    if not isinstance(cls, type):
        return False
    flag = getattr(cls, "uses_wiring", None)
    if flag is not None:
        return bool(flag)
    http = sys.modules.get("framework.services._http")  # not imported: nothing can subclass it
    return http is not None and issubclass(cls, http.HttpService)


def wiring_modules(container: Any) -> list[ModuleType]:
    """The modules named by the container's ``wiring_config``, packages walked (and imported) as
    dependency-injector's ``wire()`` walks them.

    ``container`` is a container instance or a ``DeclarativeContainer`` class. Relative names
    (``".endpoints"``) are resolved against ``from_package``, else the container's own package.
    A name that cannot be imported raises `GraphError` naming it.
    """
    config = getattr(container, "wiring_config", None)
    if config is None or not (config.modules or config.packages):
        return []
    parent = getattr(container, "declarative_parent", None) or container
    base = config.from_package
    if base is None:
        owner = sys.modules.get(getattr(parent, "__module__", ""), None)
        base = getattr(owner, "__package__", None)
    found: dict[str, ModuleType] = {}
    for module in _imported(config.modules, base, parent):
        found.setdefault(module.__name__, module)
    for package in _imported(config.packages, base, parent):
        for module in _walk_package(package):
            found.setdefault(module.__name__, module)
    return list(found.values())


def wired_injections(container: Any) -> list[WiredInjection]:
    """Every marker in the container's wired modules that resolves to one of its providers.

    Markers that do not resolve (a name the container does not have) are skipped, as
    dependency-injector skips them when it wires.
    """
    resolver = di_wiring.ProvidersMap(_as_instance_like(container))
    out: list[WiredInjection] = []
    for module in wiring_modules(container):
        for where, marker in _markers_of_module(module):
            if isinstance(marker, _CLOSING):
                inner = marker.provider
                marker = inner if isinstance(inner, _MARKERS) else marker
            try:
                provider = resolver.resolve_provider(marker.provider, marker.modifier)
            except Exception:  # a modifier that cannot apply: wiring would skip it too
                provider = None
            if provider is not None:
                out.append(WiredInjection(where, marker, provider))
    return out


def unwire_container(container: Any) -> list[str]:
    """Unwire the modules that are still wired to ``container``; returns their names.

    Wiring is global to a module: a module wired by ``container`` and wired again since by another
    container (a second application, a test's own container) is left alone, so stopping one
    application never breaks another. Call it after the last service has stopped.
    """
    modules: dict[str, ModuleType] = {}
    for module in getattr(container, "wired_to_modules", ()):
        modules.setdefault(module.__name__, module)
    for package in getattr(container, "wired_to_packages", ()):
        for module in _walk_package(package, import_new=False):
            modules.setdefault(module.__name__, module)
    mine = _provider_ids(container) if modules else set()  # a walk over every provider
    unwired = [m for name, m in modules.items() if _wired_to(m, mine)]
    if unwired:
        di_wiring.unwire(modules=unwired)
    for attribute in ("wired_to_modules", "wired_to_packages"):
        wired = getattr(container, attribute, None)
        if isinstance(wired, list):
            wired.clear()
    return [m.__name__ for m in unwired]


# -- finding markers --------------------------------------------------------------------------


def _markers_of_module(module: ModuleType) -> Iterator[tuple[str, Any]]:
    prefix = module.__name__
    for attr, member in _members(module):
        if di_wiring.is_excluded_from_inspect(member):
            continue
        if isinstance(member, _MARKERS):
            yield f"{prefix}:{attr}", member
        elif _is_function_like(member):
            yield from _markers_of_callable(f"{prefix}:{attr}", member)
        elif inspect.isclass(member):
            for name, inner in _members(member):
                where = f"{prefix}:{member.__qualname__}.{name}"
                if isinstance(inner, _MARKERS):
                    yield where, inner
                elif _is_function_like(inner) or inspect.ismethod(inner):
                    yield from _markers_of_callable(where, inner)


def _markers_of_callable(where: str, fn: Any) -> Iterator[tuple[str, Any]]:
    if not _may_have_markers(fn):
        return
    try:
        signature = inspect.signature(fn)
    except (ValueError, TypeError):
        return
    for name, parameter in signature.parameters.items():
        marker = _extract_marker(parameter)
        if marker is not None:
            yield f"{where}({name})", marker


def _may_have_markers(fn: Any) -> bool:
    """Whether ``fn``'s signature can hold a marker, read from its defaults and annotations
    directly: building the signature of every method of every class a wired module imports
    (FastAPI's, SQLAlchemy's) was most of the time the graph took to find."""
    target = inspect.unwrap(getattr(fn, "__func__", fn), stop=lambda f: hasattr(f, "__signature__"))
    if not inspect.isfunction(target) or hasattr(target, "__signature__"):
        return True  # what the signature is made of is not plain: take the long way
    defaults = [*(target.__defaults__ or ()), *(target.__kwdefaults__ or {}).values()]
    annotations = getattr(target, "__annotations__", None) or {}
    return any(_marker_in(None, default) is not None for default in defaults) or any(
        _marker_in(annotation, None) is not None for annotation in annotations.values()
    )


def _extract_marker(parameter: inspect.Parameter) -> Any:
    return _marker_in(parameter.annotation, parameter.default)


def _marker_in(annotation: Any, default: Any) -> Any:
    """As dependency-injector extracts it: ``Annotated`` metadata, else the default; each
    candidate unwrapped from ``Depends(...)`` (and the other registered extractors)."""
    origin: Any = get_origin(annotation)
    if origin is Annotated:
        candidates: Iterable[Any] = get_args(annotation)[1:]
    else:
        candidates = (default,)
    for candidate in candidates:
        for extract in di_wiring.MARKER_EXTRACTORS:
            found = extract(candidate)
            if found:
                candidate = found
                break
        if isinstance(candidate, _MARKERS):
            return candidate
    return None


def _members(obj: Any) -> list[tuple[str, Any]]:
    """Members and ``Annotated[..., Provide[...]]`` annotations, as wiring lists them."""
    try:
        members = inspect.getmembers(obj)
    except Exception:  # an object whose attributes raise: wiring skips it too
        return []
    try:
        annotations: dict[str, Any] = inspect.get_annotations(obj)
    except Exception:
        annotations = {}
    for name, annotation in annotations.items():
        origin: Any = get_origin(annotation)
        if origin is Annotated:
            markers = [a for a in get_args(annotation)[1:] if isinstance(a, _MARKERS)]
            members += [(name, markers[0])] if markers else []
    return members


def _is_function_like(obj: Any) -> bool:
    return inspect.isfunction(obj) or inspect.iscoroutinefunction(obj) or inspect.ismethod(obj)


# -- modules ----------------------------------------------------------------------------------


def _imported(names: Iterable[Any], base: str | None, parent: Any) -> Iterator[ModuleType]:
    for item in names:
        if isinstance(item, ModuleType):
            yield item
            continue
        try:
            yield importlib.import_module(str(item), base)
        except Exception as exc:
            owner = getattr(parent, "__name__", "the container")
            raise GraphError(
                f"{owner}.wiring_config names {item!r}, which cannot be imported "
                f"({type(exc).__name__}: {exc}); fix the module name (relative names resolve "
                f"against {base or 'no package'})"
            ) from None


def _walk_package(package: ModuleType, *, import_new: bool = True) -> list[ModuleType]:
    modules = [package]
    path = getattr(package, "__path__", None)
    if path is None:
        return modules
    import pkgutil

    for info in pkgutil.walk_packages(path, prefix=package.__name__ + "."):
        module = sys.modules.get(info.name)
        if module is None and import_new:
            module = importlib.import_module(info.name)
        if module is not None:
            modules.append(module)
    return modules


# -- containers -------------------------------------------------------------------------------


class _ClassView:
    """A ``DeclarativeContainer`` class seen as ``ProvidersMap`` sees an instance: markers name
    the class's own providers, so each maps to itself."""

    def __init__(self, container_class: Any) -> None:
        self.providers = dict(container_class.providers)
        self.__self__ = container_class.__self__
        self.declarative_parent = None
        self._class = container_class

    def __getattr__(self, name: str) -> Any:
        return getattr(self._class, name)


def _as_instance_like(container: Any) -> Any:
    return _ClassView(container) if isinstance(container, type) else container


def _provider_ids(container: Any) -> set[int]:
    """Every provider of the container, and everything reachable from them."""
    seen: set[int] = set()
    stack = list(getattr(container, "providers", {}).values())
    while stack:
        provider = stack.pop()
        if id(provider) in seen:
            continue
        seen.add(id(provider))
        stack.extend(getattr(provider, "related", ()))
    return seen


def _wired_to(module: ModuleType, mine: set[int]) -> bool:
    """Whether the module's injections are bound to providers of this container."""
    from framework._compat.dependency_injector import injected

    return any(
        isinstance(value, providers.Provider) and _reaches(value, mine)
        for value in injected(module)
    )


def _reaches(provider: Any, mine: set[int]) -> bool:
    seen: set[int] = set()
    stack = [provider]
    while stack:
        p = stack.pop()
        if id(p) in mine:
            return True
        if id(p) in seen:
            continue
        seen.add(id(p))
        stack.extend(getattr(p, "related", ()))
    return False
