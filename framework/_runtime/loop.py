"""Which event loop an application serving HTTP runs on: uvloop when ``http.loop`` allows it.

Embedded, uvicorn serves on the application's event loop, so the choice is made before the loop
starts (`Application.run` asks `loop_factory`); ``HttpService.start()`` then checks that an
explicit ``http.loop = "uvloop"`` was honoured.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable
from typing import Any

__all__ = ("backend_options", "have_uvloop", "loop_factory")


def have_uvloop() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(loop: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's ``new_event_loop`` for ``auto`` (when installed) and ``uvloop``; else None."""
    if loop == "uvloop" or (loop == "auto" and have_uvloop()):
        try:
            import uvloop
        except ImportError:
            return None  # start() says so, naming the setting
        factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
        return factory
    return None


def backend_options(backend: str, loop: str) -> dict[str, Any]:
    """``anyio.run``'s backend options: on asyncio, uvloop when ``http.loop`` allows it (uvicorn
    serves on the application's loop)."""
    factory = loop_factory(loop) if backend == "asyncio" else None
    return {"loop_factory": factory} if factory is not None else {}
