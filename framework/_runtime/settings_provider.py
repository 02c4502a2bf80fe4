"""Settings providers: the container's providers the application fills with its settings, or cannot.

The application fills only a provider named ``settings``, with the loaded settings object. A
``providers.Configuration`` named ``settings`` would be silently replaced by an object it does not
expect, and a ``providers.Dependency(instance_of=Settings)`` under another name (or an unfilled
``Configuration`` that a service reads) would fail only when the service is created:
`settings_provider_problems` names each such provider and what to do, before anything is built.
"""

from __future__ import annotations

from typing import Any

from dependency_injector import providers

from framework._config.settings import Settings
from framework._runtime.discovery import service_providers

__all__ = ("settings_provider_problems",)


def settings_provider_problems(
    container_class: Any, settings_class: type[Any] | None = None
) -> list[str]:
    """Settings providers the application cannot fill, each with what to do about it.

    The application fills only a provider named ``settings``, with the loaded settings object:
    a ``providers.Configuration`` named ``settings`` would be silently replaced by an object it
    does not expect, and a ``providers.Dependency(instance_of=Settings)`` under another name (or
    an unfilled ``Configuration`` used by a service) would fail only when the service is created.
    """
    settings_class = settings_class or Settings
    name = getattr(container_class, "__name__", type(container_class).__name__)
    all_providers = dict(container_class.providers)
    problems: list[str] = []
    own = all_providers.get("settings")
    fix = "settings = providers.Dependency(instance_of=Settings)"
    if isinstance(own, providers.Configuration):
        problems.append(
            f"{name}.settings is a providers.Configuration, but the application fills the "
            f"provider named 'settings' with its {settings_class.__name__} object (attribute "
            f"access, not a dict): declare {fix} and use settings.provided.<section>, or rename "
            "the Configuration and load it yourself"
        )
    elif (
        isinstance(own, providers.Dependency)
        and isinstance(own.instance_of, type)
        and not issubclass(settings_class, own.instance_of)
    ):
        problems.append(
            f"{name}.settings expects {own.instance_of.__name__}, but the application loads "
            f"{settings_class.__name__}: set the application's settings_class to it, or "
            f"declare settings = providers.Dependency(instance_of={settings_class.__name__})"
        )
    for other, provider in all_providers.items():
        if other == "settings":
            continue
        if isinstance(provider, providers.Dependency) and _is_settings(provider.instance_of):
            problems.append(
                f"{name}.{other} expects the settings, but the application fills only a "
                f"provider named 'settings': rename {other!r} to 'settings'"
            )
    if own is None:
        problems += _unfilled_configurations(name, container_class, all_providers)
    return problems


def _reads(start: Any, config: Any) -> bool:
    """Whether ``config`` (a Configuration) or one of its options is reachable from ``start``."""
    from framework._compat.dependency_injector import option_root

    seen: set[int] = set()
    stack = [start]
    while stack:
        p = stack.pop()
        if id(p) in seen:
            continue
        seen.add(id(p))
        if p is config or (
            isinstance(p, providers.ConfigurationOption) and option_root(p) is config
        ):
            return True
        stack.extend(getattr(p, "related", ()))
    return False


def _is_settings(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, Settings)


def _unfilled_configurations(
    name: str, container_class: Any, all_providers: dict[str, Any]
) -> list[str]:
    """``Configuration`` providers that services read, in a container without ``settings``."""
    unfilled = {
        other: provider
        for other, provider in all_providers.items()
        if isinstance(provider, providers.Configuration) and not _filled(provider)
    }
    if not unfilled:
        return []
    services = service_providers(container_class)
    problems = []
    for other, provider in unfilled.items():
        used_by = sorted(s for s, p in services.items() if _reads(p, provider))
        if used_by:
            problems.append(
                f"{name}.{other} is a providers.Configuration that nothing fills, read by "
                f"service(s) {', '.join(used_by)}; the application fills only a provider named "
                "'settings': declare settings = providers.Dependency(instance_of=Settings) and "
                "use settings.provided.<section>"
            )
    return problems


def _filled(config: Any) -> bool:
    """A Configuration with a source of its own (files, pydantic settings, a default, overrides)."""
    sources = (
        config.get_yaml_files(),
        config.get_ini_files(),
        config.get_json_files(),
        config.get_pydantic_settings(),
        config.get_default(),
        config.overridden,
    )
    return any(sources)
