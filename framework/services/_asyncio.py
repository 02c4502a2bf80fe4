"""`require_asyncio`: the one check built-in services make that they run on asyncio."""

from __future__ import annotations

import asyncio

from framework._engine.errors import FrameworkError

__all__ = ("require_asyncio",)


def require_asyncio(
    what: str, why: str, error: type[FrameworkError] = FrameworkError
) -> asyncio.AbstractEventLoop:
    """The running asyncio loop; else ``error`` saying that ``what`` needs asyncio, and ``why``.

    ``what`` names the service class (``"HttpService"``), ``why`` the library that needs asyncio
    (``"uvicorn runs on asyncio"``).
    """
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise error(
            f"{what} needs the asyncio backend ({why}); run the application with "
            "backend='asyncio' (the default; `framework run --backend asyncio`)"
        ) from None
