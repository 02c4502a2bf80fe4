"""One deep copy of a container's providers, as ``DeclarativeContainer.__new__`` makes it.

dependency-injector copies each provider through ``copy.deepcopy`` (about ten generic calls per
provider) and builds each copy through its public setters: a ``Singleton`` with three dependencies
costs about 20 us that way, most of it in setters that check and convert again what the original
already checked. `ProviderCopy.provider` makes the same copy with less:

- a factory or singleton that neither overrides nor is overridden is copied here, its arguments
  copied through the same memo (every other object goes through dependency-injector's own copy);
- when it is exactly a ``Singleton`` or ``Factory`` whose arguments are all providers, its copy is
  made the way unpickling makes one: each object's fields set at once from the original's values
  (``__setstate_cython__``), in about half the time. That is done only for the field layouts
  this module was written against: Cython puts a checksum of each class's fields in its pickle
  data, and a dependency-injector whose layouts differ gets the setters instead (`BY_STATE`).

The copied graph is the same either way (``tests/test_container.py`` compares every field).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any

from dependency_injector import providers

__all__ = ("BY_STATE", "ProviderCopy")

# the providers whose copy `ProviderCopy.provider` makes: exactly these two `__deepcopy__` methods
_PLAIN_COPIES = (providers.Factory.__deepcopy__, providers.BaseSingleton.__deepcopy__)

_Singleton, _Factory, _Callable = providers.Singleton, providers.Factory, providers.Callable
_Positional: Any = providers.PositionalInjection  # type: ignore[attr-defined]  # (no stubs)
_Named: Any = providers.NamedInjection  # type: ignore[attr-defined]
# the pickle checksums of the field layouts `_by_state` fills, as in dependency-injector 4.49:
#   Singleton: async_mode, instantiator (a Factory), last_overriding, overridden, overrides, storage
#   Factory: async_mode, attributes, attributes_len, instantiator (a Callable), last_overriding,
#     overridden, overrides
#   Callable: args, args_len, async_mode, kwargs, kwargs_len, last_overriding, overridden,
#     overrides, provides
#   PositionalInjection: call, is_delegated, is_provider, value
#   NamedInjection: call, is_delegated, is_provider, name, value
_LAYOUTS: dict[Any, int] = {
    _Singleton: 168097882,
    _Factory: 181105893,
    _Callable: 205000629,
    _Positional: 147834741,
    _Named: 259766847,
}


def _layouts_known() -> bool:
    try:
        return all(
            kind.__new__(kind).__reduce_cython__()[1][1] == checksum
            for kind, checksum in _LAYOUTS.items()
        )
    except Exception:  # no pickle support, or another shape of it
        return False


BY_STATE = _layouts_known()
"""Whether plain singletons and factories are copied field by field (see the module docstring)."""


def _all_providers(values: Iterable[Any]) -> bool:
    return all(isinstance(value, providers.Provider) for value in values)


class ProviderCopy:
    """One deep copy of a container's providers: one memo, as ``providers.deepcopy`` keeps it."""

    def __init__(self) -> None:
        self.memo: dict[int, Any] = {id(s): s for s in (sys.stdin, sys.stdout, sys.stderr)}
        self.generic_copies = 0
        """Objects copied by dependency-injector (a `Self` provider does not count)."""

    def generic(self, obj: Any) -> Any:
        if not isinstance(obj, providers.Self):
            self.generic_copies += 1
        return providers.deepcopy(obj, self.memo)

    def provider(self, provider: Any) -> Any:
        """``providers.deepcopy(provider, memo)``, done here for a factory or singleton that
        neither overrides nor is overridden (dependency-injector's ``__deepcopy__`` of those)."""
        done = self.memo.get(id(provider))
        if done is not None:
            return done
        kind = type(provider)
        if (
            getattr(kind, "__deepcopy__", None) not in _PLAIN_COPIES
            or provider.overridden
            or provider.last_overriding is not None
            or provider.overrides
        ):
            return self.generic(provider)
        provides = provider.provides
        args, kwargs, attributes = provider.args, provider.kwargs, provider.attributes
        if (
            BY_STATE
            and (kind is _Singleton or kind is _Factory)
            and not providers.is_provider(provides)
            and _all_providers(args)
            and (not kwargs or _all_providers(kwargs.values()))
            and (not attributes or _all_providers(attributes.values()))
        ):
            return self._by_state(provider, provides, args, kwargs, attributes)
        return self._by_setters(provider, provides, args, kwargs, attributes)

    def _by_setters(
        self, provider: Any, provides: Any, args: Any, kwargs: Any, attributes: Any
    ) -> Any:
        memo = self.memo
        copied = memo[id(provider)] = type(provider)()
        copied.set_provides(self.generic(provides) if providers.is_provider(provides) else provides)
        if not args:
            pass  # a new provider has none
        elif _all_providers(args):
            copied.set_args(*[self.provider(a) for a in args])
        else:
            self.generic_copies += 1
            copied.set_args(*providers.deepcopy_args(provider, args, memo))
        if not kwargs:
            pass
        elif _all_providers(kwargs.values()):
            copied.set_kwargs(**{k: self.provider(v) for k, v in kwargs.items()})
        else:
            self.generic_copies += 1
            named: dict[str, Any] = providers.deepcopy_kwargs(provider, kwargs, memo)  # type: ignore[assignment]
            copied.set_kwargs(**named)
        if attributes:
            copied.set_attributes(**self.generic(attributes))
        return copied

    def _by_state(
        self,
        provider: Any,
        provides: Any,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        attributes: dict[str, Any],
    ) -> Any:
        """The copy of an exact ``Singleton`` or ``Factory`` whose arguments are all providers, its
        objects' fields set at once: what its setters would set (a new provider: no overrides, no
        async mode decided, no instance stored)."""
        kind: Any = type(provider)
        copied = kind.__new__(kind)
        self.memo[id(provider)] = copied  # first: a cycle through the arguments finds it
        positional = tuple([self._injection(_Positional, a) for a in args]) if args else ()
        named = tuple([self._injection(_Named, v, k) for k, v in kwargs.items()]) if kwargs else ()
        call: Any = _Callable.__new__(_Callable)
        call.__setstate_cython__(
            (positional, len(positional), 0, named, len(named), None, (), (), provides)
        )
        if kind is _Factory:
            factory = copied
        else:
            factory = _Factory.__new__(_Factory)
            copied.__setstate_cython__((0, factory, None, (), (), None))
        attrs = (
            tuple([self._injection(_Named, v, k) for k, v in attributes.items()])
            if attributes
            else ()
        )
        factory.__setstate_cython__((0, attrs, len(attrs), call, None, (), ()))
        return copied

    def _injection(self, kind: Any, value: Any, *name: str) -> Any:
        """An injection (named if ``name``) of the copy of provider ``value``, its flags (call,
        is_delegated, is_provider) as ``set()`` computes them."""
        copied = self.memo.get(id(value))
        if copied is None:
            copied = self.provider(value)
        injection = kind.__new__(kind)
        flags = (0, 1, 1) if providers.is_delegated(copied) else (1, 0, 1)
        injection.__setstate_cython__((*flags, *name, copied))
        return injection
