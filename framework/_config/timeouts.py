"""Per-service time bounds: config > class attribute > lifecycle default.

Plain data in, plain data out: the runner builds the engine's bounds from it, and
``framework check`` (`framework._config.budget`) does its arithmetic with it, without an application.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from framework._config.settings import Settings
from framework._engine.events import Bound

__all__ = ("all_bounds", "service_bounds", "stop_seconds")


def service_bounds(name: str, service_class: type, settings: Settings) -> tuple[Bound, Bound]:
    """The (start, stop) bounds of service ``name``, each naming the setting it came from."""
    section = settings.services.get(name)  # not settings.service(name): no model built per service
    lifecycle = settings.lifecycle
    out = []
    for phase, default in (("start", lifecycle.start_timeout), ("stop", lifecycle.stop_timeout)):
        key = f"{phase}_timeout"
        if section is not None and getattr(section, key) is not None:
            out.append(Bound(getattr(section, key), f"services.{name}.{key}"))
        elif getattr(service_class, key, None) is not None:
            out.append(Bound(float(getattr(service_class, key)), f"{service_class.__name__}.{key}"))
        else:
            out.append(Bound(default, f"lifecycle.{key}"))
    return out[0], out[1]


def all_bounds(
    names: Iterable[str], service_class: Callable[[str], type], settings: Settings
) -> dict[str, tuple[Bound, Bound]]:
    """`service_bounds` of each service; computed once per class for services not configured."""
    out: dict[str, tuple[Bound, Bound]] = {}
    by_class: dict[type, tuple[Bound, Bound]] = {}
    for name in names:
        cls = service_class(name)
        if settings.services.get(name) is not None:
            out[name] = service_bounds(name, cls, settings)
        else:  # nothing names the service: the class and the lifecycle settings decide
            if cls not in by_class:
                by_class[cls] = service_bounds(name, cls, settings)
            out[name] = by_class[cls]
    return out


def stop_seconds(
    names: Iterable[str], classes: Mapping[str, type], settings: Settings
) -> dict[str, float]:
    """Each service's stop time in seconds for the budget arithmetic: its stop bound (0 for no
    bound), plus its ``drain_timeout`` where one is configured (its ``run()`` and spawned tasks
    may take that long before ``stop()`` begins)."""
    out = {}
    for name in names:
        stop = service_bounds(name, classes[name], settings)[1].seconds or 0.0
        section = settings.services.get(name)
        drain = section.drain_timeout if section is not None else None
        out[name] = stop + (drain or 0.0)
    return out
