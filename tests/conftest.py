from __future__ import annotations

import pytest


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Backend-neutral code runs on both asyncio and trio."""
    return str(request.param)
