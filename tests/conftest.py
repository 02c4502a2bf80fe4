from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import PostgresServer, find_bindir


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Backend-neutral code runs on both asyncio and trio."""
    return str(request.param)


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of the test module's own (skipped when not installed)."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) are not installed: "
            "install the 'postgresql' package to run these tests"
        )
    server = PostgresServer.start(bindir)
    try:
        yield server
    finally:
        server.stop()
