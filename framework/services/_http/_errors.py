"""The HTTP service's errors, all `framework.FrameworkError`s."""

from __future__ import annotations

from framework._engine.errors import FrameworkError

__all__ = ("HttpServiceError", "LifespanShutdownError", "ListenError", "RequestsCutOffError")


class HttpServiceError(FrameworkError):
    """The HTTP service cannot run as configured, or did not serve or stop as it should."""


class ListenError(HttpServiceError, OSError):
    """The listening socket could not be opened: address in use, not of this machine, privileged."""

    explained = True  # the message says what to change: logged without a traceback

    def __init__(self, message: str, errno_: int | None = None) -> None:
        super().__init__(message)
        self.errno = errno_


class LifespanShutdownError(HttpServiceError):
    """The ASGI app's lifespan shutdown failed (``lifespan.shutdown.failed``, or it raised)."""

    explained = True  # uvicorn logged the app's traceback already


class RequestsCutOffError(HttpServiceError):
    """``stop()`` cut off requests that were still running, to keep within its stop bound."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count
