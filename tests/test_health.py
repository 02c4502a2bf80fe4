"""Health checks: the poller on asyncio and trio, /readyz following them, a real PostgreSQL."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from dependency_injector import providers

from framework import Service, ServiceState
from framework._config.settings import DatabaseSettings
from framework._engine.events import Event, EventBus, ServiceHealthChanged
from framework._engine.graph import DependencyGraph
from framework._engine.lifecycle import Lifecycle
from framework._engine.readiness import Readiness
from framework._engine.readiness_events import follow_lifecycle
from framework._runtime.context import ServiceView
from framework._runtime.health import HealthPoller, health_metrics
from framework.services import DatabaseService
from tests._http_helpers import api, app_class
from tests._process import framework_env, free_port, with_sets
from tests.postgres import PostgresServer, _as_server_user


class Checked(Service):
    """health() answers ``answer`` after ``delay`` s, or raises ``error``; counts its calls."""

    def __init__(self) -> None:
        self.answer = True
        self.delay = 0.0
        self.error: Exception | None = None
        self.calls = 0

    async def health(self) -> bool:
        self.calls += 1
        if self.error is not None:
            raise self.error
        await anyio.sleep(self.delay)
        return self.answer


class Plain(Service):
    """No health(): never checked."""


async def wait_until(predicate: Any, what: str, within: float = 5.0) -> None:
    with anyio.move_on_after(within):
        while not predicate():
            await anyio.sleep(0.005)
        return
    raise AssertionError(f"not within {within} s: {what}")


def changes(events: list[Event]) -> list[tuple[str, bool]]:
    return [(e.service, e.healthy) for e in events if isinstance(e, ServiceHealthChanged)]


# -- the poller, on asyncio and trio --------------------------------------------------------------


@pytest.mark.anyio
async def test_unhealthy_then_recovered_is_one_event_each_and_readiness_follows() -> None:
    """A failing check turns readiness not-ready (which service, why, since when) with one event
    however many rounds fail; a passing one makes it ready again with one more event."""
    checked = Checked()
    readiness, events = Readiness(), []
    bus = EventBus(follow_lifecycle(readiness), events.append)
    services = {"db": checked, "plain": Plain()}
    lifecycle = Lifecycle(services, DependencyGraph.from_edges({"db": [], "plain": []}), bus=bus)
    await lifecycle.start()
    poller = HealthPoller(services, bus, interval=0.01, timeout=0.5)
    assert set(poller.checks) == {"db"}
    async with anyio.create_task_group() as tg:
        poller.start(tg)
        await wait_until(lambda: poller.rounds >= 2, "two rounds")
        assert readiness.ready and changes(events) == []
        checked.answer = False
        await wait_until(lambda: not readiness.ready, "not ready")
        rounds = poller.rounds
        await wait_until(lambda: poller.rounds >= rounds + 3, "three more rounds")
        assert changes(events) == [("db", False)]
        details = readiness.details()["db"]
        assert details["reason"] == "unhealthy: health() returned False"
        assert abs(details["since"] - time.time()) < 60
        assert poller.results["db"].healthy is False
        checked.answer = True
        await wait_until(lambda: readiness.ready, "ready again")
        assert changes(events) == [("db", False), ("db", True)]
        poller.stop()
    rounds = poller.rounds
    await anyio.sleep(0.05)
    assert poller.rounds == rounds  # stopped
    await lifecycle.stop()


@pytest.mark.anyio
async def test_timeout_and_exception_count_as_unhealthy_with_their_reason() -> None:
    """A check slower than health_timeout is unhealthy (the setting named); one that raises is
    unhealthy with the error, a password in a URL masked."""
    slow, failing = Checked(), Checked()
    slow.delay = 10.0
    failing.error = ConnectionError("cannot reach postgresql://app:hunter22@db:5432/app")
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    services = {"slow": slow, "failing": failing}
    lifecycle = Lifecycle(
        services, DependencyGraph.from_edges({"slow": [], "failing": []}), bus=bus
    )
    await lifecycle.start()
    poller = HealthPoller(services, bus, interval=10.0, timeout=0.05)
    with anyio.fail_after(5):
        await poller.check_all()
    reasons = {e.service: e.reason for e in events if isinstance(e, ServiceHealthChanged)}
    assert reasons["slow"] == "health() did not answer within 0.05 s (lifecycle.health_timeout)"
    assert reasons["failing"].startswith("health() raised ConnectionError: cannot reach")
    assert "hunter22" not in reasons["failing"] and "app:***@db" in reasons["failing"]
    await lifecycle.stop()


class Shielded(Service):
    """health() never returns: it waits in a shielded scope (as a blocking driver call in a
    worker thread does), so cancelling it has no effect."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = anyio.Event()

    async def health(self) -> bool:
        self.calls += 1
        with anyio.CancelScope(shield=True):
            await self.release.wait()
        return True


class Answers(Service):
    """health() returns ``answer`` (anything), at once."""

    def __init__(self, answer: object) -> None:
        self.answer = answer

    async def health(self) -> Any:
        return self.answer


@pytest.mark.anyio
async def test_a_check_that_ignores_cancellation_counts_unhealthy_and_delays_no_other() -> None:
    """A hung check (shielded) is unhealthy at its bound, is not started again while it runs,
    and each round still ends at the bound: the other service's failing check is reported on
    time, and answers again each round."""
    hung, failing = Shielded(), Checked()
    failing.answer = False
    bus, events = EventBus(), []
    bus.subscribe(events.append)
    services = {"hung": hung, "failing": failing}
    lifecycle = Lifecycle(
        services, DependencyGraph.from_edges({"hung": [], "failing": []}), bus=bus
    )
    await lifecycle.start()
    poller = HealthPoller(services, bus, interval=10.0, timeout=0.05)
    for _ in range(3):
        with anyio.fail_after(2):  # each round ends at the bound, whatever the hung check does
            await poller.check_all()
    assert hung.calls == 1 and failing.calls == 3
    assert set(poller.unhealthy) == {"hung", "failing"}
    assert "has still not returned" in poller.results["hung"].reason
    hung.release.set()
    await wait_until(lambda: "hung" not in poller._in_flight, "the hung check returned")
    await poller.check_all()
    assert hung.calls == 2 and "hung" not in poller.unhealthy
    await lifecycle.stop()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "shown"),
    [
        ("down", "'down'"),
        (None, "None"),
        (1, "1"),
        ("ok", "'ok'"),
        ({"dsn": "postgresql://app:hunter22@db/app"}, "{'dsn': 'postgresql://app:***@db/app'}"),
        ("remembered-secret-value", "'**********'"),
        ("x" * 500, "'" + "x" * 76 + "..."),
    ],
    ids=["down", "None", "1", "ok", "url password", "remembered secret", "long"],
)
async def test_a_check_that_returns_no_bool_is_unhealthy_and_logged_once(
    answer: object, shown: str
) -> None:
    """Anything but True or False counts unhealthy; the log says so once, naming the service
    and the value: its repr, secrets masked (a URL's password, a secret of the settings), cut
    to 80 characters. The reason `/readyz` shows is the same text."""
    from loguru import logger

    from framework._engine.secrets import remember

    remember({"remembered-secret-value"})  # as setup_logging does with the settings' secrets
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}")
    try:
        bus = EventBus()
        services = {"odd": Answers(answer)}
        lifecycle = Lifecycle(services, DependencyGraph.from_edges({"odd": []}), bus=bus)
        await lifecycle.start()
        poller = HealthPoller(services, bus, interval=10.0, timeout=1.0)
        for _ in range(3):
            await poller.check_all()
        assert "odd" in poller.unhealthy
        said = [line for line in lines if "not a bool" in line]
        assert len(said) == 1, lines
        assert f"service 'odd': health() returned {shown}, not a bool" in said[0], said
        assert "hunter22" not in said[0] and "remembered-secret-value" not in said[0]
        assert poller.results["odd"].reason == said[0].strip()
        await lifecycle.stop()
    finally:
        logger.remove(sink)


@pytest.mark.anyio
async def test_a_service_that_is_not_started_is_not_checked() -> None:
    """Before its start and after its stop (and while it restarts), health() is not called."""
    checked = Checked()
    bus = EventBus()
    poller = HealthPoller({"db": checked}, bus, interval=1.0, timeout=1.0)
    await poller.check_all()
    assert checked.calls == 0
    lifecycle = Lifecycle({"db": checked}, DependencyGraph.from_edges({"db": []}), bus=bus)
    await lifecycle.start()
    await poller.check_all()
    assert checked.calls == 1
    await lifecycle.stop()
    await poller.check_all()
    assert checked.calls == 1


# -- the application and /readyz over a real socket (asyncio: uvicorn) -----------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_readyz_503_while_unhealthy_livez_runs_no_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """/readyz answers 503 with the unhealthy service and since when, 200 once it recovers;
    /livez answers 200 throughout and never calls health(); the metrics show each service's
    health and restarts."""
    monkeypatch.chdir(tmp_path)
    app = app_class(api(), checked=providers.Singleton(Checked))(
        config_dir=tmp_path,
        overrides={
            "http.port": 0,
            "http.readyz_details": True,
            "http.metrics_path": "/metrics",
            "lifecycle.health_interval": 0.05,
            "lifecycle.health_timeout": 0.5,
        },
    )
    async with app.running():
        checked = app.container.checked()
        url = app.container.http().url
        async with httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/readyz")).status_code == 200
            checked.answer = False
            await wait_until(lambda: not app.readiness.ready, "not ready")
            readyz = await client.get("/readyz")
            sick = (await client.get("/metrics")).text
            calls = checked.calls
            assert app.health_poller is not None
            rounds = app.health_poller.rounds
            livez = [(await client.get("/livez")).status_code for _ in range(20)]
            assert (
                checked.calls - calls <= app.health_poller.rounds - rounds
            )  # one per round, no more
            checked.answer = True
            await wait_until(lambda: app.readiness.ready, "ready again")
            recovered = await client.get("/readyz")
            well = (await client.get("/metrics")).text
    assert readyz.status_code == 503
    unhealthy = readyz.json()["unhealthy"]["checked"]
    assert unhealthy["reason"] == "unhealthy: health() returned False"
    assert isinstance(unhealthy["since"], float)
    assert livez == [200] * 20
    assert recovered.status_code == 200 and "unhealthy" not in recovered.json()
    assert 'framework_service_healthy{service="checked"} 0.0' in sick
    assert 'framework_service_healthy{service="http"} 1.0' in sick
    assert 'framework_service_healthy{service="checked"} 1.0' in well
    assert 'framework_service_restarts_total{service="checked"} 0.0' in well


def test_health_metrics_families() -> None:
    """framework_service_healthy is 0 for a service readiness holds as unhealthy (or restarting),
    1 otherwise; framework_service_restarts_total counts each service's restarts."""
    from prometheus_client import CollectorRegistry, generate_latest

    readiness = Readiness()
    readiness.mark_unhealthy("db", "restarting")
    views = {
        "db": ServiceView(ServiceState.STARTED, restarts=2),
        "http": ServiceView(ServiceState.STARTED),
    }

    class Collector:
        def collect(self) -> Any:
            return health_metrics(readiness.unhealthy, views)

    registry = CollectorRegistry()
    registry.register(Collector())  # type: ignore[arg-type]
    text = generate_latest(registry).decode()
    assert 'framework_service_healthy{service="db"} 0.0' in text
    assert 'framework_service_healthy{service="http"} 1.0' in text
    assert 'framework_service_restarts_total{service="db"} 2.0' in text


# -- DatabaseService.health(): SELECT 1 on the async and the synchronous engine -------------------


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.parametrize("scheme", ["sqlite+aiosqlite", "sqlite"])
async def test_database_health_runs_select_1_on_both_engines(tmp_path: Path, scheme: str) -> None:
    """health() is True while started (async and synchronous engine), False before and after."""
    db = DatabaseService(DatabaseSettings(url=f"{scheme}:///{tmp_path / 'app.db'}"))
    assert await db.health() is False
    await db.start()
    try:
        assert await db.health() is True
    finally:
        await db.stop()
    assert await db.health() is False


# -- a real PostgreSQL stopped under load: framework run, then SIGTERM -----------------------------


def pg_ctl_stop(server: PostgresServer) -> None:
    """Stop the server (keeping its data): every client connection is cut."""
    _as_server_user(
        [str(server.bindir / "pg_ctl"), "stop", "-D", str(server.data), "-m", "fast", "-w"],
        cwd=server.root,
    )


class Load:
    """GET / in a loop from a thread, and the probes every 50 ms; what each answered, when."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.readyz: list[tuple[float, int]] = []
        self.livez: list[int | str] = []
        self.requests = 0
        self._done = threading.Event()
        self._threads = [
            threading.Thread(target=self._load, daemon=True),
            threading.Thread(target=self._probe, daemon=True),
        ]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _load(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._done.is_set():
                try:
                    client.get("/hello")
                    self.requests += 1
                except httpx.HTTPError:
                    time.sleep(0.01)

    def _probe(self) -> None:
        with httpx.Client(base_url=self.url, timeout=5) as client:
            while not self._done.is_set():
                try:
                    self.livez.append(client.get("/livez").status_code)
                    status = client.get("/readyz").status_code
                except httpx.HTTPError as exc:
                    self.livez.append(type(exc).__name__)
                    status = 0
                self.readyz.append((time.monotonic(), status))
                time.sleep(0.05)

    def wait_readyz(self, status: int, since: float, within: float) -> float:
        """Seconds from ``since`` until /readyz first answered ``status``; fail past ``within``."""
        deadline = time.monotonic() + within + 5  # a little longer, to report the real time
        while time.monotonic() < deadline:
            for at, seen in list(self.readyz):
                if at >= since and seen == status:
                    return at - since
            time.sleep(0.02)
        raise AssertionError(f"/readyz never answered {status}: {self.readyz[-5:]}")


@pytest.mark.postgres
def test_postgres_stopped_under_load_turns_readyz_503_and_back(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """PostgreSQL stopped under load: /readyz 503 within health_interval + health_timeout + 1 s,
    /livez 200 throughout; PostgreSQL back: /readyz 200 again within the same time; SIGTERM then
    exits 0."""
    interval, timeout = 1.0, 1.0
    bound = interval + timeout + 1.0
    port = free_port()
    module = tmp_path / "pg_health_app.py"
    module.write_text(PG_APP, encoding="utf-8")
    log = tmp_path / "stderr.log"
    with log.open("w", encoding="utf-8") as stderr:  # a file: a full pipe would block the loop
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "framework", "run", "pg_health_app:App"),
                *with_sets(
                    f"database.url={postgres.url}",
                    f"http.port={port}",
                    f"lifecycle.health_interval={interval}",
                    f"lifecycle.health_timeout={timeout}",
                ),
            ],
            cwd=tmp_path,
            env=framework_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    try:
        with Load(f"http://127.0.0.1:{port}") as load:
            load.wait_readyz(200, time.monotonic() - 60, within=30)
            stopped_at = time.monotonic()
            pg_ctl_stop(postgres)
            down = load.wait_readyz(503, stopped_at, within=bound)
            time.sleep(interval * 2)
            postgres._pg_ctl_start()
            started_at = time.monotonic()
            up = load.wait_readyz(200, started_at, within=bound)
            time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text(encoding="utf-8")
    print(f"/readyz 503 after {down:.2f} s, 200 again after {up:.2f} s; {load.requests} requests")
    assert down <= bound and up <= bound, (down, up, bound)
    serving = load.livez[load.livez.index(200) :]  # from the first answer: before, it was starting
    assert len(serving) > 20 and set(serving) == {200}
    assert load.requests > 50
    assert proc.returncode == 0, err
    assert "service 'db' is unhealthy" in err and "service 'db' is healthy again" in err
    assert postgres.password not in err


HOLDING_APP = '''
"""A FastAPI app on PostgreSQL whose GET /hold keeps one of the pool's connections for 4 s."""

from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject
from fastapi import Depends, FastAPI
from sqlalchemy import text

from framework import Application, Settings
from framework.services import DatabaseService, HttpService

api = FastAPI()


@api.get("/hold")
@inject
async def hold(db: DatabaseService = Depends(Provide["db"])) -> dict[str, str]:
    async with db.engine.connect() as connection:
        await connection.execute(text("SELECT pg_sleep(4)"))
    return {"held": "4 s"}


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(modules=[__name__])
    settings = providers.Dependency(instance_of=Settings)
    db = providers.Singleton(DatabaseService, settings=settings.provided.database)
    http = providers.Singleton(
        HttpService, app=providers.Object(api), settings=settings.provided.http
    )


class App(Application):
    container_class = Container
'''


@pytest.mark.slow
@pytest.mark.postgres
def test_a_pool_held_full_by_requests_keeps_the_app_ready(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """A running app, pool_size 2 and max_overflow 0, both connections held by two requests for
    4 s: /readyz stays 200 throughout (0.2 answered 503 "did not answer within 1 s" here, and with
    a readiness probe every pod of the Service left it together), and both requests answer 200."""
    port = free_port()
    (tmp_path / "holding_app.py").write_text(HOLDING_APP, encoding="utf-8")
    log = tmp_path / "stderr.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "framework", "run", "holding_app:App"),
                *with_sets(
                    f"database.url={postgres.url}",
                    "database.pool_size=2",
                    "database.max_overflow=0",
                    f"http.port={port}",
                    "lifecycle.health_interval=0.3",
                    "lifecycle.health_timeout=1",
                ),
            ],
            cwd=tmp_path,
            env=framework_env(),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    base = f"http://127.0.0.1:{port}"
    held: list[int] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _answers(f"{base}/readyz", 200):
            assert proc.poll() is None, log.read_text(encoding="utf-8")
            time.sleep(0.1)

        def one_hold() -> None:
            held.append(httpx.get(f"{base}/hold", timeout=30).status_code)

        holders = [threading.Thread(target=one_hold) for _ in range(2)]
        began = time.monotonic()
        for holder in holders:
            holder.start()
        time.sleep(0.5)
        readyz = []
        while time.monotonic() - began < 3.5:  # the connections are held until 4 s
            readyz.append(httpx.get(f"{base}/readyz", timeout=5).status_code)
            time.sleep(0.1)
        for holder in holders:
            holder.join(timeout=30)
        took = time.monotonic() - began
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = log.read_text(encoding="utf-8")
    assert held == [200, 200] and took >= 4, (held, took, err)
    assert len(readyz) > 10 and set(readyz) == {200}, readyz
    assert "unhealthy" not in err
    assert proc.returncode == 0, err


def _answers(url: str, status: int) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == status
    except httpx.HTTPError:
        return False


PG_APP = '''
"""A web app on PostgreSQL for the health test: GET /hello; the database is checked by health()."""

from dependency_injector import containers, providers
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from framework import Application, Settings
from framework.services import DatabaseService, HttpService


async def hello(request):
    return PlainTextResponse("hello")


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    db = providers.Singleton(DatabaseService, settings=settings.provided.database)
    http = providers.Singleton(
        HttpService,
        app=providers.Object(Starlette(routes=[Route("/hello", hello)])),
        settings=settings.provided.http,
    )


class App(Application):
    container_class = Container
'''


@pytest.mark.postgres
@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_a_full_pool_is_not_an_unhealthy_database(postgres: PostgresServer) -> None:
    """pool_size 2, max_overflow 0, both connections held by the application's traffic: health()
    still answers True at once, on a connection of its own (it used to wait for the pool and
    answer False after health_timeout, taking every pod out of the Service under load)."""
    from sqlalchemy import text

    db = DatabaseService(
        DatabaseSettings(url=postgres.url, pool_size=2, max_overflow=0, health_timeout=1.0)
    )
    await db.start()
    try:
        async with db.engine.connect() as one, db.engine.connect() as two:
            await one.execute(text("SELECT 1"))
            await two.execute(text("SELECT 1"))
            assert db.checked_out == 2
            with anyio.fail_after(5):
                assert await db.health() is True
            assert db.checked_out == 2
    finally:
        await db.stop()
