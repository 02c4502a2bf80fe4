"""The collector around the startup: paused while building, the heap frozen while running."""

from __future__ import annotations

import gc

import anyio
import pytest
from dependency_injector import containers, providers

from framework import Application, Service
from framework._heap import gc_paused


class Noop(Service):
    def __init__(self, *deps: object) -> None:
        self.deps = deps


class Container(containers.DeclarativeContainer):
    a = providers.Singleton(Noop)
    b = providers.Singleton(Noop, a)


class App(Application):
    container_class = Container


def test_gc_paused_restores_the_previous_state() -> None:
    """Inside, the collector is off; after, it is as it was (on stays on, off stays off)."""
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_gc_paused_restores_it_when_the_body_raises() -> None:
    """An error inside (a constructor that fails) still turns the collector back on."""
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_the_heap_is_frozen_while_running_and_thawed_after_the_stop(tmp_path: object) -> None:
    """Once the services exist the heap is frozen (no collector pass walks the container); after
    the stop every frozen object is handed back, and the collector is on throughout."""
    seen: list[int] = []

    async def main() -> None:
        app = App(config_dir=str(tmp_path), overrides={"logging.stderr": False})
        assert gc.get_freeze_count() == 0 and gc.isenabled()
        async with app.running():
            seen.append(gc.get_freeze_count())
            assert gc.isenabled()

    anyio.run(main)
    assert seen[0] > 0
    assert gc.get_freeze_count() == 0 and gc.isenabled()
