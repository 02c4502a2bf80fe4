"""The FastAPI + dependency-injector example (examples/fastapi), as users run it.

Pinned: wiring alone orders db before http (`check`); the example's own tests pass (FastAPI's
TestClient style and the framework's fixtures); its lifespan works with a database that takes
1 s to start; SIGTERM under load answers every request it accepted with a 2xx and exits 0; the
docs page shows the example's files as they are.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from dependency_injector import providers

from framework.services import DatabaseService, DatabaseSettings
from framework.testing import run_app
from tests._process import REPO, finish, framework_env, free_port, run_cli, spawn, with_sets

EXAMPLE = REPO / "examples" / "fastapi"


@pytest.fixture
def example_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """The example's package importable in-process (and its modules forgotten after)."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name == "todo" or name.startswith("todo."):
            del sys.modules[name]


def test_check_orders_db_before_http_from_the_wiring_alone() -> None:
    """`framework check` on the example: 0: db, 1: http."""
    result = run_cli(EXAMPLE, "check", "todo.application:App")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["0: db", "1: http"]


@pytest.mark.slow
def test_the_examples_own_tests_pass() -> None:
    """`make test` of the example: TestClient-style tests and tests with the plugin's fixtures."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=EXAMPLE,
        env=framework_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "6 passed" in result.stdout


class SlowDatabase(DatabaseService):
    """Takes 1 s to start: the lifespan must wait for it."""

    async def start(self) -> None:
        await anyio.sleep(1.0)
        await super().start()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_lifespan_waits_for_a_database_that_takes_a_second(
    example_path: None, tmp_path: Path
) -> None:
    """The db provider swapped for one that starts in 1 s, on the example's synchronous URL
    (sqlite:///, a SQLAlchemy Engine): the lifespan still creates the schema (it runs after the
    database started) and the endpoints work."""
    from todo.application import App

    url = f"sqlite:///{tmp_path}/todo.db"
    slow = providers.Singleton(SlowDatabase, settings=providers.Object(DatabaseSettings(url=url)))
    settings = {"logging.level": "WARNING"}
    async with run_app(App, overrides=settings, providers={"db": slow}) as harness:
        assert harness.events.started() == ["db", "http"]
        client = harness.client()
        assert (await client.post("/tasks", json={"title": "a"})).status_code == 201
        assert (await client.get("/tasks")).json() == [{"id": 1, "title": "a", "done": False}]
    assert harness.events.stopped() == ["http", "db"]


async def _hammer(url: str, statuses: list[int], stop_at: float) -> None:
    """Requests in a loop until the server is gone (or ``stop_at``); records every status."""
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            try:
                if n % 4 == 0:
                    response = await client.post("/tasks", json={"title": f"t{n}"})
                else:
                    response = await client.get("/tasks")
            except httpx.TransportError:
                return  # the listener closed: the request was never accepted
            statuses.append(response.status_code)


@pytest.mark.slow
def test_sigterm_under_load_answers_every_accepted_request(tmp_path: Path) -> None:
    """SIGTERM while 8 clients send requests (keep-alive): every request the server accepted is
    answered 2xx, and the exit code is 0."""
    port = free_port()
    sets = with_sets(f"http.port={port}", f"database.url=sqlite:///{tmp_path}/todo.db")
    proc = spawn(EXAMPLE, "run", "todo.application:App", *sets)
    url = f"http://127.0.0.1:{port}"
    statuses: list[int] = []

    async def main() -> None:
        with anyio.fail_after(20):
            while True:
                try:
                    async with httpx.AsyncClient() as probe:
                        if (await probe.get(url + "/tasks")).status_code == 200:
                            break
                except httpx.TransportError:
                    pass
                await anyio.sleep(0.05)
        async with anyio.create_task_group() as tg:
            for _ in range(8):
                tg.start_soon(_hammer, url, statuses, time.monotonic() + 20)
            await anyio.sleep(1.5)
            proc.send_signal(signal.SIGTERM)

    try:
        anyio.run(main)
    finally:
        code, err = finish(proc)
    assert code == 0, err
    assert len(statuses) > 20, statuses
    assert [s for s in statuses if not 200 <= s < 300] == []


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("wrk") is None, reason="wrk is not installed (apt-get install wrk)"
)
def test_sigterm_under_wrk_gives_no_non_2xx() -> None:
    """The example's `make load` script, 2 runs (the full 10 are `make load`): wrk with 32
    keep-alive connections, SIGTERM mid-run; 0 non-2xx responses, exit code 0 every time."""
    result = subprocess.run(
        [sys.executable, "loadtest.py", "--runs", "2", "--duration", "3", "--sigterm-after", "1"],
        cwd=EXAMPLE,
        env=framework_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    total = result.stdout.strip().splitlines()[-1]
    assert total.startswith("total: 2 runs, ") and "0 non-2xx, 0 non-zero exits" in total, total
    assert int(total.split(", ")[1].split()[0]) > 0, total  # wrk's requests were answered


def test_the_docs_page_shows_the_examples_files(example_path: Any) -> None:
    """docs/howto/fastapi.md's file blocks are the example's files, byte for byte."""
    page = (REPO / "docs" / "howto" / "fastapi.md").read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n# (todo/[\w/]+\.py)\n(.*?)^```$", page, re.M | re.S)
    assert {path for path, _ in blocks} >= {
        "todo/containers.py",
        "todo/endpoints.py",
        "todo/application.py",
        "todo/repositories.py",
    }
    for path, body in blocks:
        assert (EXAMPLE / path).read_text(encoding="utf-8") == body, path
