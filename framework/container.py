"""Building the app's container and creating its services, before anything starts.

`build_container` instantiates the `DeclarativeContainer` class and hands it the loaded settings
(a provider named ``settings`` is overridden with them); `create_services` calls each service's
provider in start order and checks it got a `Service`.

Instantiating a `DeclarativeContainer` class deep-copies its providers (each instance gets its own
singletons). `instantiate` does what ``container_class()`` does, with a faster copy of the common
providers (`framework._provider_copy`): the copied graph is the same.

The collector is paused while they run, and once the services exist the heap is frozen
(`framework._heap`): the application thaws it (`thaw_heap`) after its last stop.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from dependency_injector import containers, providers
from dependency_injector.errors import NonCopyableArgumentError

from framework import messages
from framework._heap import freeze_heap, gc_paused, thaw_heap
from framework._provider_copy import ProviderCopy
from framework.errors import FrameworkError, GraphError, StartupError
from framework.graph import DependencyGraph
from framework.service import Service
from framework.settings import Settings
from framework.settings_provider import settings_provider_problems

__all__ = ("build_container", "create_services", "instantiate", "thaw_heap")


def build_container(
    container_class: type[containers.DeclarativeContainer], settings: Settings
) -> containers.DeclarativeContainer:
    """An instance of ``container_class`` whose ``settings`` provider (if any) gives ``settings``.

    Raises `GraphError` (nothing started, exit 78) for a settings provider the application cannot
    fill and for a ``wiring_config`` module that cannot be imported.
    """
    problems = settings_provider_problems(container_class, type(settings))
    if problems:
        raise GraphError("; ".join(problems))
    name = container_class.__name__
    try:
        # the class's providers are deep-copied (a few objects per provider, no garbage), and the
        # container wires itself when it has a wiring_config
        with gc_paused():
            container = instantiate(container_class)
    except NonCopyableArgumentError as exc:
        raise FrameworkError(
            f"{name}: {exc}; wrap the object in providers.Object(...) "
            "(dependency-injector copies plain arguments when it creates the container)"
        ) from None
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
    with gc_paused():
        for name in graph.order:
            try:
                service = service_providers[name]()
            except Exception as exc:
                message = messages.not_created(name, exc)
                messages.runner_log().opt(exception=exc).error(message)
                raise StartupError([], message) from exc
            if not isinstance(service, Service):
                message = messages.not_a_service(name, service)
                messages.runner_log().error(message)
                raise StartupError([], message)
            services[name] = service
    freeze_heap()  # the container and the services live as long as the app: no GC pass over them
    return services


def instantiate(
    container_class: type[containers.DeclarativeContainer],
) -> containers.DeclarativeContainer:
    """``container_class()``: a `DynamicContainer` with a copy of every provider, wired if its
    ``wiring_config`` says so; faster for containers of plain factories and singletons."""
    cls: Any = container_class
    if cls.__new__ is not containers.DeclarativeContainer.__new__:
        return container_class()  # a class that makes its instances its own way
    container = cls.instance_type()
    container.provider_type = cls.provider_type
    container.wiring_config = copy.deepcopy(cls.wiring_config)
    container.declarative_parent = cls
    copier = ProviderCopy()
    copied = {name: copier.provider(p) for name, p in cls.providers.items()}
    copied_self = copier.generic(cls.__self__)
    copied_self.set_container(container)
    container.__self__ = copied_self
    for name in copied_self.alt_names:
        container.set_provider(name, copied_self)
    for name, provider in copied.items():
        container.set_provider(name, provider)
    # both walk every provider for a Configuration or Container one: only generic copies hold any
    if cls.auto_load_config and copier.generic_copies:
        container.load_config()
    if copier.generic_copies:
        container.apply_container_providers_overridings()
    if container.is_auto_wiring_enabled():
        container.wire()
    made: containers.DeclarativeContainer = container
    return made
