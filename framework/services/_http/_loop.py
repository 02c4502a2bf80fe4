"""``http.loop = "uvloop"`` honoured: checked when the service starts (the loop is chosen before)."""

from __future__ import annotations

import asyncio

from framework._runtime.loop import have_uvloop
from framework.services._http._errors import HttpServiceError

__all__ = ("check_loop",)


def check_loop(loop: str, name: str) -> None:
    """`HttpServiceError` when ``http.loop`` asks for uvloop and the running loop is not one."""
    if loop != "uvloop":
        return
    running = type(asyncio.get_running_loop())
    if not running.__module__.startswith("uvloop"):
        hint = (
            "install it (pip install 'framework[standard]')"
            if not have_uvloop()
            else "run the application with `framework run` or Application.run()"
        )
        raise HttpServiceError(
            f"{name}: http.loop is 'uvloop' but the event loop is {running.__module__}."
            f"{running.__qualname__}; {hint}, or set http.loop to 'auto' or 'asyncio'"
        )
