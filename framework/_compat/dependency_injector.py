"""dependency-injector's private parts the framework uses, and why.

- ``dependency_injector.wiring._patched_registry``: what wiring has injected into a module (the
  providers bound to each patched function's parameters, and the patched attributes). Wiring is
  global to a module, so before unwiring the modules an application's container wired, the
  framework asks whether their injections are still that container's: a module wired since by
  another container (a second application, a test's own) is left alone. dependency-injector's
  public API unwires modules, but does not say what they are wired to.
- ``ConfigurationOption._get_root()``: the `Configuration` an option (``config.db.url``) belongs
  to, to find which services read a configuration nothing fills. Its stub names a ``root``
  property, but an option answers ``.root`` with its child option named "root".
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

from framework._compat import require

__all__ = ("SUPPORTED", "injected", "option_root")

SUPPORTED = ">=4.48.1,<5"
"""The dependency-injector versions this adapter was written and tested for (``pyproject.toml``'s
range)."""

require("dependency-injector", SUPPORTED)


def injected(module: ModuleType) -> Iterator[Any]:
    """What wiring has injected into ``module`` now: the provider of every injected parameter of
    its patched functions, and the current value of each patched attribute."""
    from dependency_injector import wiring

    registry = wiring._patched_registry
    for fn in registry.get_callables_from_module(module):
        yield from registry.get_callable(fn).injections.values()
    for attribute in registry.get_attributes_from_module(module):
        # the module's or class's own attribute: an application may have deleted it since
        yield getattr(attribute.member, attribute.name, None)


def option_root(option: Any) -> Any:
    """The `Configuration` that ``option`` (a ``ConfigurationOption``) is an option of."""
    return option._get_root()
