"""Telling a cancellation the engine asked for from a stray one.

``task.cancel(); await task`` inside a ``stop()`` re-raises the awaited task's ``CancelledError``
unless it is caught: the service's own call then raises the backend's cancellation exception
although nothing cancelled the service. Taken for a real cancellation, it would end the walk (the
services it depends on never stop) or a ``run()`` body as if it had returned. The engine asks
`is_stray` in each ``except`` of a cancellation and treats a stray one as a failure of that step.
"""

from __future__ import annotations

import math

import anyio
import sniffio

from framework._engine.errors import FrameworkError

__all__ = ("StrayCancellation", "is_stray", "stray")


class StrayCancellation(FrameworkError):
    """A service's call raised a cancellation that nobody asked for."""


def is_stray() -> bool:
    """In an ``except`` of the backend's cancellation: whether nothing cancelled this task.

    A cancellation the engine (or anyone) asked for shows as a cancelled scope around the task
    (the effective deadline is ``-inf``); on asyncio also as a pending ``task.cancel()``. trio's
    ``Cancelled`` cannot be raised by user code, so on trio a cancellation is never stray.
    """
    if anyio.current_effective_deadline() == -math.inf:
        return False
    if sniffio.current_async_library() != "asyncio":
        return False
    import asyncio

    task = asyncio.current_task()
    return task is not None and task.cancelling() == 0


def stray(call: str) -> StrayCancellation:
    """The error recorded for a stray cancellation out of ``call`` (``stop()``, ``run()``, ...)."""
    return StrayCancellation(
        f"{call} raised CancelledError although nothing cancelled it (did it cancel a task and "
        "await it without catching CancelledError?)"
    )
