"""Building the app's container and creating its services, before anything starts.

`build_container` instantiates the `DeclarativeContainer` class and hands it the loaded settings
(a provider named ``settings`` is overridden with them); `create_services` calls each service's
provider in start order and checks it got a `Service`.

Instantiating a `DeclarativeContainer` class deep-copies its providers (each instance gets its own
singletons): a plain object passed as a provider argument is copied too, and one that cannot be
copied is a graph error naming the provider (wrap it in ``providers.Object``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers
from dependency_injector.errors import NonCopyableArgumentError

from framework._config.settings import Settings
from framework._engine.errors import FrameworkError, GraphError, StartupError
from framework._engine.graph import DependencyGraph
from framework._engine.service import Service
from framework._runtime import messages
from framework._runtime.settings_provider import settings_provider_problems

__all__ = ("build_container", "create_services")


def build_container(
    container_class: type[containers.DeclarativeContainer], settings: Settings
) -> containers.DeclarativeContainer:
    """An instance of ``container_class`` whose ``settings`` provider (if any) gives ``settings``.

    Raises `GraphError` (nothing started, exit 78) for a settings provider the application cannot
    fill, a provider argument that cannot be copied, and a ``wiring_config`` module that cannot be
    imported.
    """
    problems = settings_provider_problems(container_class, type(settings))
    if problems:
        raise GraphError("; ".join(problems))
    name = container_class.__name__
    try:
        # the class's providers are deep-copied, and the container wires itself when it has a
        # wiring_config
        container = container_class()
    except NonCopyableArgumentError as exc:
        raise GraphError(_not_copyable(container_class, exc)) from None
    except ImportError as exc:
        raise GraphError(
            f"{name}.wiring_config: cannot import {exc.name or exc}: {exc}; name modules that "
            "exist (relative names need the container's own package)"
        ) from None
    if "settings" in container.providers:
        container.settings.override(providers.Object(settings))
    return container


def create_services(
    graph: DependencyGraph, service_providers: Mapping[str, Any]
) -> dict[str, Service]:
    """Call each service's provider, in start order; `StartupError` (logged) on the first failure."""
    services: dict[str, Service] = {}
    for name in graph.order:
        try:
            service = service_providers[name]()
        except Exception as exc:
            message = messages.not_created(name, exc)
            # our own errors say what to do (a missing extra names the pip install): no traceback
            shown = None if isinstance(exc, FrameworkError) else exc
            messages.runner_log().opt(exception=shown).error(message)
            raise StartupError([], message) from exc
        if not isinstance(service, Service):
            message = messages.not_a_service(name, service)
            messages.runner_log().error(message)
            raise StartupError([], message)
        services[name] = service
    return services


def _not_copyable(
    container_class: type[containers.DeclarativeContainer], exc: NonCopyableArgumentError
) -> str:
    """Which provider of ``container_class`` holds the argument that cannot be copied, and why."""
    held: object = exc.provider
    found: dict[str, Any] = dict(container_class.providers)
    names = [
        name
        for name, provider in found.items()
        if provider is held or any(p is held for p in provider.traverse())
    ]
    where = f"provider {names[0]!r}" if names else repr(exc.provider)
    argument = f"argument {exc.keyword!r}" if exc.keyword else f"argument {exc.index + 1}"
    object_ = _argument(exc)
    return (
        f"{container_class.__name__}: {where}: its {argument} ({object_}) cannot be copied, and "
        "dependency-injector copies plain arguments when it creates the container; wrap the "
        f"object in providers.Object(...), or create it with a provider of its own"
    )


def _argument(exc: NonCopyableArgumentError) -> str:
    """The type of the argument that could not be copied, e.g. ``a Starlette object``."""
    provider: Any = exc.provider
    try:
        value = provider.kwargs[exc.keyword] if exc.keyword else provider.args[exc.index]
    except (AttributeError, IndexError, KeyError):
        return "an object"
    return f"a {type(value).__name__} object"
