"""The database service in a real Application: SQLite files and a real PostgreSQL server.

What is pinned: a dependent service's stop() commits before the pool is disposed; a wrong URL fails
the start with a clear message and never shows the password; stop() waits for checked-out
connections, and closes those held past its bound (their transactions roll back); no connection of
the application survives its exit (seen in pg_stat_activity); trio gets a clear error.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest
from dependency_injector import containers, providers
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, async_sessionmaker

from framework import Application, FrameworkError, Service, ServiceState, Settings, StartupError
from framework._engine.errors import ConfigError
from framework._engine.events import Outcome
from framework.services import DatabaseService, DatabaseSettings
from tests._process import free_port
from tests.postgres import PostgresServer

REPO = Path(__file__).resolve().parent.parent
OBSERVER = "framework-tests-observer"


@pytest.fixture
def anyio_backend() -> str:
    """SQLAlchemy's async engine runs on asyncio only (trio is tested for its clear error)."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No config/ or .env of the repo is read; a relative SQLite path lands in tmp_path."""
    monkeypatch.chdir(tmp_path)
    for key in [k for k in os.environ if k.upper().startswith("APP_")]:
        monkeypatch.delenv(key)


# -- applications ---------------------------------------------------------------------------------


def app_with(dependent: type[Service] | None = None, **kwargs: Any) -> type[Application]:
    """An Application whose container has ``db`` and, when given, ``repo`` depending on it."""

    class Container(containers.DeclarativeContainer):
        settings = providers.Dependency(instance_of=Settings)
        db = providers.Singleton(DatabaseService, settings=settings.provided.database)
        if dependent is not None:
            repo = providers.Singleton(dependent, db=db, **kwargs)

    class App(Application):
        container_class = Container

    return App


def settings_for(tmp_path: Path, url: str | None = None, **more: Any) -> dict[str, Any]:
    """Overrides: the URL, logs in a file the test reads, and ``more`` dotted keys."""
    out: dict[str, Any] = {"logging.file": str(tmp_path / "app.log"), **more}
    if url is not None:
        out["database.url"] = url
    return out


def log_text(tmp_path: Path) -> str:
    return (tmp_path / "app.log").read_text(encoding="utf-8")


def db_of(app: Application) -> DatabaseService:
    db = app.container.db()
    assert isinstance(db, DatabaseService)
    return db


def sqlite_rows(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        return connection.execute(sql).fetchall()


async def until(predicate: Callable[[], bool], *, within: float = 5.0) -> None:
    """Wait until ``predicate()`` holds; bounded in time and in count."""
    for _ in range(int(within / 0.01)):
        if predicate():
            return
        await anyio.sleep(0.01)
    raise AssertionError(f"condition not met within {within} s")


class Journal(Service):
    """Depends on the database; its stop() writes a row in a transaction of its own."""

    def __init__(self, db: DatabaseService) -> None:
        self.db = db

    async def start(self) -> None:
        async with self.db.engine.begin() as connection:
            await connection.execute(text("CREATE TABLE IF NOT EXISTS journal (line TEXT)"))

    async def stop(self) -> None:
        async with self.db.sessions.begin() as session:
            await session.execute(text("INSERT INTO journal VALUES ('written in stop')"))


# -- SQLite ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_engine_and_sessions_exist_only_while_started() -> None:
    """Before start() (and after stop()) .engine and .sessions raise a clear error."""
    db = DatabaseService(DatabaseSettings())
    with pytest.raises(FrameworkError, match=r"DatabaseService\.engine is not available before"):
        _ = db.engine
    with pytest.raises(FrameworkError, match=r"\.sessions is not available before start"):
        _ = db.sessions
    assert await db.health() is False
    await db.start()
    assert isinstance(db.engine, AsyncEngine)
    assert isinstance(db.sessions, async_sessionmaker)
    await db.stop()
    with pytest.raises(FrameworkError, match=r"not available once stopped"):
        _ = db.engine


@pytest.mark.anyio
async def test_sqlite_default_url_and_a_dependent_stop_commits_before_dispose(
    tmp_path: Path,
) -> None:
    """Default URL: ./app.db. The dependent's stop() runs first, and its row is committed."""
    app = app_with(Journal)(overrides=settings_for(tmp_path))
    async with app.running():
        db = db_of(app)
        assert await db.health() is True
        assert db.engine.url.database == "./app.db"
    assert app.exit_code == 0
    assert sqlite_rows(tmp_path / "app.db", "SELECT line FROM journal") == [("written in stop",)]
    assert db.state is ServiceState.STOPPED
    assert await db.health() is False
    assert "database pool disposed" in log_text(tmp_path)


@pytest.mark.anyio
async def test_sqlite_in_memory_uses_no_pool_sizes(tmp_path: Path) -> None:
    """An in-memory SQLite (StaticPool) starts: pool_size and max_overflow are not passed to it."""
    app = app_with()(overrides=settings_for(tmp_path, "sqlite+aiosqlite://"))
    async with app.running():
        assert type(db_of(app).engine.pool).__name__ == "StaticPool"
    assert app.exit_code == 0


@pytest.mark.anyio
async def test_wrong_url_fails_the_start_clearly_without_the_password(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A server that is not there: the message names the URL (password masked) and what to check;
    the password is nowhere: not in the error, its traceback, the log file or stderr."""
    password = "pw-" + secrets.token_hex(8)
    url = f"postgresql+asyncpg://app:{password}@127.0.0.1:{free_port()}/app"
    app = app_with(Journal)(overrides=settings_for(tmp_path, url))
    with pytest.raises(StartupError) as caught:
        await app.start()
    message = str(caught.value)
    assert "database.url 'postgresql+asyncpg://app:***@127.0.0.1:" in message
    assert "cannot connect: ConnectionRefusedError" in message
    assert "check that the server is running" in message
    assert app.exit_code == 1
    everything = "".join(traceback.format_exception(caught.value)) + log_text(tmp_path)
    out, err = capfd.readouterr()
    everything += out + err
    assert password not in everything
    assert "*" * 10 not in everything  # the logging's safety net had nothing to mask


@pytest.mark.anyio
async def test_a_server_that_never_answers_times_the_start_out_cleanly(tmp_path: Path) -> None:
    """A port that accepts but never answers: the start bound cancels the connect; the failure
    names the bound, the log says what was being connected to, the password stays hidden."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        port = silent.getsockname()[1]
        url = f"postgresql+asyncpg://app:hidden-pw@127.0.0.1:{port}/app"
        overrides = settings_for(tmp_path, url, **{"services.db.start_timeout": 0.3})
        app = app_with()(overrides=overrides)
        with pytest.raises(StartupError, match=r"did not start within 0\.3 s \(services\.db"):
            await app.start()
    log = log_text(tmp_path)
    assert "start cancelled while connecting to postgresql+asyncpg://app:***@127.0.0.1" in log
    assert "hidden-pw" not in log


@pytest.mark.anyio
async def test_sqlite_missing_directory_says_what_to_check(tmp_path: Path) -> None:
    """SQLite cannot create a file in a missing directory: the hint names the directory."""
    app = app_with()(overrides=settings_for(tmp_path, "sqlite+aiosqlite:///./missing/app.db"))
    with pytest.raises(StartupError, match="check that the file's directory exists"):
        await app.start()


@pytest.mark.anyio
async def test_a_url_whose_driver_is_not_installed_is_explained(tmp_path: Path) -> None:
    """A driver that is not installed: a configuration error before anything starts, naming
    database.url, the driver and the way out, never the password."""
    url = "postgresql+pg8000://user:hunter2@127.0.0.1:1/x"
    with pytest.raises(ConfigError, match=r"database\.url: .*'pg8000'.* is not installed") as info:
        app_with()(overrides=settings_for(tmp_path, url))
    assert "pip install pg8000" in str(info.value)
    assert "hunter2" not in str(info.value)


# -- synchronous drivers --------------------------------------------------------------------------


class SyncJournal(Service):
    """Uses the synchronous engine from worker threads; its stop() commits a row."""

    def __init__(self, db: DatabaseService) -> None:
        self.db = db

    def _run(self, sql: str) -> None:
        with self.db.sessions.begin() as session:
            session.execute(text(sql))

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self._run, "CREATE TABLE IF NOT EXISTS journal (line TEXT)")

    async def stop(self) -> None:
        await anyio.to_thread.run_sync(self._run, "INSERT INTO journal VALUES ('written in stop')")


@pytest.mark.anyio
async def test_sync_sqlite_gives_an_engine_and_a_sessionmaker(tmp_path: Path) -> None:
    """sqlite:/// gives a synchronous Engine and sessionmaker; health() works; the dependent's
    stop() commits before the pool is disposed."""
    from sqlalchemy.engine import Engine
    from sqlalchemy.orm import sessionmaker

    app = app_with(SyncJournal)(overrides=settings_for(tmp_path, "sqlite:///./sync.db"))
    async with app.running():
        db = db_of(app)
        assert db.is_async is False
        assert isinstance(db.engine, Engine) and isinstance(db.sessions, sessionmaker)
        assert await db.health() is True
    assert app.exit_code == 0
    assert sqlite_rows(tmp_path / "sync.db", "SELECT line FROM journal") == [("written in stop",)]
    log = log_text(tmp_path)
    assert "(sqlite, synchronous, QueuePool)" in log
    assert "database pool disposed" in log


@pytest.mark.anyio
async def test_sync_stop_waits_for_a_connection_held_in_a_thread(tmp_path: Path) -> None:
    """A synchronous connection checked out in a worker thread when stop() begins is waited for."""
    app = app_with()(overrides=settings_for(tmp_path, "sqlite:///./sync.db"))
    await app.start()
    db = db_of(app)
    connection = await anyio.to_thread.run_sync(db.engine.connect)
    assert db.checked_out == 1

    async def give_back() -> None:
        await until(lambda: db.state is ServiceState.STOPPING)
        await anyio.sleep(0.05)
        await anyio.to_thread.run_sync(connection.close)

    async with anyio.create_task_group() as tg:
        tg.start_soon(give_back)
        code = await app.stop()
    assert code == 0 and db.cut_off == 0 and db.checked_out == 0
    assert "waiting for 1 checked-out connection(s)" in log_text(tmp_path)


@pytest.mark.anyio
async def test_sync_connection_held_past_the_bound_is_cut_off(tmp_path: Path) -> None:
    """Held past services.db.stop_timeout: closed from a worker thread, its transaction rolled
    back, counted in cut_off, the pool disposed, the stop reported timed out."""
    settings = settings_for(tmp_path, "sqlite:///./sync.db", **{"services.db.stop_timeout": 0.2})
    app = app_with()(overrides=settings)
    await app.start()
    db = db_of(app)

    def leak() -> Any:
        with db.engine.begin() as connection:
            connection.execute(text("CREATE TABLE t (x INTEGER)"))
        leaked = db.engine.connect()
        leaked.begin()
        leaked.execute(text("INSERT INTO t VALUES (1)"))
        return leaked

    leaked = await anyio.to_thread.run_sync(leak)
    code = await app.stop()
    assert code == 1 and db.cut_off == 1
    assert app.lifecycle is not None
    assert app.lifecycle.records["db"].stop_outcome is Outcome.TIMED_OUT
    assert sqlite_rows(tmp_path / "sync.db", "SELECT count(*) FROM t") == [(0,)]
    with pytest.raises(SQLAlchemyError):
        await anyio.to_thread.run_sync(leaked.execute, text("SELECT 1"))


@pytest.mark.anyio
async def test_stop_waits_for_a_connection_returned_after_stop_began(tmp_path: Path) -> None:
    """A connection checked out when stop() begins is waited for; then the pool is disposed."""
    app = app_with()(overrides=settings_for(tmp_path, "sqlite+aiosqlite:///./app.db"))
    returned: list[str] = []
    async with anyio.create_task_group() as tg:
        await app.start()
        db = db_of(app)
        held = anyio.Event()

        async def hold() -> None:
            async with db.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                held.set()
                await until(lambda: db.state is ServiceState.STOPPING)
                await anyio.sleep(0.05)
                returned.append("returned")

        tg.start_soon(hold)
        await held.wait()
        assert db.checked_out == 1
        code = await app.stop()
    assert returned == ["returned"]
    assert code == 0
    assert db.cut_off == 0
    assert db.checked_out == 0
    assert db.state is ServiceState.STOPPED
    log = log_text(tmp_path)
    assert "waiting for 1 checked-out connection(s) to be returned" in log
    assert log.index("every connection was returned") < log.index("database pool disposed")


@pytest.mark.anyio
async def test_stop_cuts_off_a_connection_held_past_its_bound(tmp_path: Path) -> None:
    """Held past services.db.stop_timeout: closed (its transaction rolls back), counted in
    cut_off, the pool still disposed, and the stop reported as timed out (exit 1)."""
    app = app_with()(
        overrides=settings_for(
            tmp_path, "sqlite+aiosqlite:///./app.db", **{"services.db.stop_timeout": 0.2}
        )
    )
    await app.start()
    db = db_of(app)
    async with db.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE t (x INTEGER)"))
    leaked = await db.engine.connect()
    await leaked.begin()
    await leaked.execute(text("INSERT INTO t VALUES (1)"))
    code = await app.stop()
    assert code == 1
    assert db.cut_off == 1
    assert app.lifecycle is not None
    assert app.lifecycle.records["db"].stop_outcome is Outcome.TIMED_OUT
    log = log_text(tmp_path)
    assert "1 connection(s) still checked out: closing them" in log
    assert "database pool disposed" in log
    with pytest.raises(SQLAlchemyError):  # closed under its holder's feet
        await leaked.execute(text("SELECT 1"))
    await leaked.close()  # harmless
    assert sqlite_rows(tmp_path / "app.db", "SELECT count(*) FROM t") == [(0,)]


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_trio_gets_a_clear_error(tmp_path: Path) -> None:
    """On trio the start fails with a message saying asyncio is needed, not a deep traceback."""
    app = app_with()(overrides=settings_for(tmp_path))
    with pytest.raises(StartupError, match="DatabaseService needs the asyncio backend"):
        async with app.running():
            pass
    assert app.exit_code == 1


@pytest.mark.anyio
async def test_the_docs_example_runs_and_commits_in_stop(tmp_path: Path) -> None:
    """docs/database.md's example, as written: Outbox.stop() writes what is still pending."""
    page = (REPO / "docs" / "database.md").read_text(encoding="utf-8")
    source = page.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {"__name__": "docs_database"}
    exec(compile(source, "docs/database.md", "exec"), namespace)
    app = namespace["App"](overrides=settings_for(tmp_path))
    async with app.running():
        app.container.outbox().pending.append("order placed")
    assert app.exit_code == 0
    assert sqlite_rows(tmp_path / "app.db", "SELECT event FROM outbox") == [("order placed",)]


# -- PostgreSQL -----------------------------------------------------------------------------------


async def observe(server: PostgresServer, sql: str, *args: Any) -> Any:
    """One value from a connection of our own, not the application's."""
    import asyncpg

    connection = await asyncpg.connect(server.dsn, server_settings={"application_name": OBSERVER})
    try:
        return await connection.fetchval(sql, *args)
    finally:
        await connection.close()


async def connections_of(server: PostgresServer, name: str) -> int:
    sql = "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1"
    return int(await observe(server, sql, name))


async def gone(server: PostgresServer, name: str, *, within: float = 5.0) -> tuple[int, float]:
    """(connections seen at once, seconds until none is left); a backend exits just after its
    client closed the socket, so this waits for that, bounded in time and count."""
    began = time.monotonic()
    first = await connections_of(server, name)
    count = first
    for _ in range(int(within / 0.02)):
        if count == 0:
            return first, time.monotonic() - began
        await anyio.sleep(0.02)
        count = await connections_of(server, name)
    raise AssertionError(f"{count} connection(s) of {name!r} still open after {within} s")


@pytest.fixture
def table(postgres: PostgresServer) -> str:
    """A fresh table of the test's own in the server's ``postgres`` database."""
    name = f"t_{secrets.token_hex(6)}"
    anyio.run(observe, postgres, f"CREATE TABLE {name} (line TEXT)")
    return name


def pg_settings(tmp_path: Path, server: PostgresServer, name: str, **more: Any) -> dict[str, Any]:
    connect_args = {"server_settings": {"application_name": name}}
    return settings_for(tmp_path, server.url, **{"database.connect_args": connect_args, **more})


class OpensATransaction(Service):
    """Opens a connection in start() and leaves a transaction open with one row in it."""

    row = "from start"

    def __init__(self, db: DatabaseService, table: str) -> None:
        self.db, self.table = db, table
        self.connection: AsyncConnection | None = None

    async def start(self) -> None:
        self.connection = await self.db.engine.connect()
        await self.connection.begin()
        await self.connection.execute(text(f"INSERT INTO {self.table} VALUES ('{self.row}')"))


class CommitsInStop(OpensATransaction):
    """Holds a transaction open from start(); its stop() adds a row and commits."""

    async def stop(self) -> None:
        if self.connection is not None:
            await self.connection.execute(text(f"INSERT INTO {self.table} VALUES ('from stop')"))
            await self.connection.commit()
            await self.connection.close()


class WritesInRun(Service):
    """Its run() is inside a transaction when shutdown comes: cancelled, it rolls back."""

    def __init__(self, db: DatabaseService, table: str) -> None:
        self.db, self.table = db, table
        self.inside = anyio.Event()

    async def run(self) -> None:
        async with self.db.sessions() as session, session.begin():
            await session.execute(text(f"INSERT INTO {self.table} VALUES ('from run')"))
            self.inside.set()
            await anyio.sleep_forever()


class ForgetsItsConnection(OpensATransaction):
    """A bug: opens a transaction in start() and never commits nor closes it."""

    row = "forgotten"


@pytest.mark.postgres
@pytest.mark.anyio
async def test_postgres_dependent_commits_in_stop_and_no_connection_survives(
    tmp_path: Path, postgres: PostgresServer, table: str
) -> None:
    """The transaction open at shutdown is committed by its owner's stop(); afterwards
    pg_stat_activity holds no connection with the application's name."""
    name = f"app-{secrets.token_hex(4)}"
    app = app_with(CommitsInStop, table=table)(overrides=pg_settings(tmp_path, postgres, name))
    async with app.running():
        assert await db_of(app).health() is True
        assert await connections_of(postgres, name) >= 1  # the filter does see the app
        assert await observe(postgres, f"SELECT count(*) FROM {table}") == 0  # not committed
    assert app.exit_code == 0
    assert await observe(postgres, f"SELECT count(*) FROM {table}") == 2
    first, _ = await gone(postgres, name)
    print(f"\n[postgres commit-in-stop] connections right after exit: {first}")


@pytest.mark.postgres
@pytest.mark.anyio
async def test_postgres_transaction_of_a_cancelled_run_rolls_back(
    tmp_path: Path, postgres: PostgresServer, table: str
) -> None:
    """run() is cancelled at shutdown inside its transaction: rolled back, connection returned,
    nothing to wait for in the database's stop."""
    name = f"app-{secrets.token_hex(4)}"
    app = app_with(WritesInRun, table=table)(overrides=pg_settings(tmp_path, postgres, name))
    async with app.running():
        repo = app.container.repo()
        with anyio.fail_after(5):
            await repo.inside.wait()
    assert app.exit_code == 0
    assert db_of(app).cut_off == 0
    assert await observe(postgres, f"SELECT count(*) FROM {table}") == 0
    await gone(postgres, name)


@pytest.mark.postgres
@pytest.mark.anyio
async def test_postgres_connection_held_past_the_bound_is_cut_off_and_rolled_back(
    tmp_path: Path, postgres: PostgresServer, table: str
) -> None:
    """A connection never returned: at services.db.stop_timeout it is closed, the server rolls
    its transaction back, no connection is left, and the stop is reported timed out."""
    name = f"app-{secrets.token_hex(4)}"
    App = app_with(ForgetsItsConnection, table=table)
    app = App(overrides=pg_settings(tmp_path, postgres, name, **{"services.db.stop_timeout": 0.3}))
    await app.start()
    assert await connections_of(postgres, name) >= 1
    code = await app.stop()
    assert code == 1
    assert db_of(app).cut_off == 1
    assert await observe(postgres, f"SELECT count(*) FROM {table}") == 0
    await gone(postgres, name)
    leaked = app.container.repo().connection
    await leaked.close()


@pytest.mark.postgres
@pytest.mark.anyio
async def test_postgres_wrong_password_is_reported_masked(
    tmp_path: Path, postgres: PostgresServer
) -> None:
    """Authentication fails: the message says so, masks the password, names database.url."""
    wrong = "wrong-" + secrets.token_hex(6)
    url = postgres.url.replace(f":{postgres.password}@", f":{wrong}@")
    app = app_with()(overrides=settings_for(tmp_path, url))
    with pytest.raises(StartupError) as caught:
        await app.start()
    message = str(caught.value)
    assert "cannot connect: InvalidPasswordError: password authentication failed" in message
    assert "postgres:***@127.0.0.1" in message
    everything = "".join(traceback.format_exception(caught.value)) + log_text(tmp_path)
    assert wrong not in everything
    assert postgres.password not in everything


APP_MODULE = """
import asyncio
from pathlib import Path

from dependency_injector import containers, providers
from sqlalchemy import text

from framework import Application, Service, Settings
from framework._engine.errors import ConfigError
from framework.services import DatabaseService


class Writer(Service):
    \"\"\"Holds a transaction open from start(); its stop() commits it. Also starts a task outside
    the service graph (like a request handler) that holds a connection until 0.2 s after stop().\"\"\"

    def __init__(self, db):
        self.db = db
        self.connection = None
        self.stopping = asyncio.Event()
        self.in_flight = None

    async def start(self):
        self.connection = await self.db.engine.connect()
        await self.connection.begin()
        await self.connection.execute(text("INSERT INTO {table} VALUES ('open at SIGTERM')"))
        self.in_flight = asyncio.get_running_loop().create_task(self.handle_request())
        Path("ready").write_text("ready")

    async def handle_request(self):
        async with self.db.engine.begin() as connection:
            await connection.execute(text("INSERT INTO {table} VALUES ('in flight')"))
            await self.stopping.wait()
            await asyncio.sleep(0.2)

    async def stop(self):
        self.stopping.set()
        if self.connection is not None:
            await self.connection.commit()
            await self.connection.close()


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    db = providers.Singleton(DatabaseService, settings=settings.provided.database)
    writer = providers.Singleton(Writer, db=db)


class App(Application):
    container_class = Container
"""


@pytest.mark.postgres
@pytest.mark.slow
@pytest.mark.anyio
async def test_sigterm_commits_the_open_transaction_and_leaves_no_connection(
    tmp_path: Path, postgres: PostgresServer, table: str
) -> None:
    """`framework run` in a subprocess; SIGTERM while two transactions are open: the owner's stop()
    commits one, the database's stop() waits for the other (returned 0.2 s later) to commit; exit
    0 and no connection with the app's name is left afterwards."""
    name = f"app-{secrets.token_hex(4)}"
    (tmp_path / "pgapp.py").write_text(APP_MODULE.replace("{table}", table), encoding="utf-8")
    command = [sys.executable, "-m", "framework", "run", "pgapp:App"]
    command += ["--set", f'database.url="{postgres.url}"']
    command += ["--set", f'database.connect_args={{server_settings={{application_name="{name}"}}}}']
    command += ["--set", 'logging.format="json"']
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    with (tmp_path / "stderr.txt").open("w") as stderr:
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=stderr
        )
        try:
            await until(lambda: (tmp_path / "ready").exists() or proc.poll() is not None, within=30)
            assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
            assert await connections_of(postgres, name) >= 1
            sent = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await until(lambda: proc.poll() is not None, within=30)
            exited = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 0, output
    lines = await observe(postgres, f"SELECT array_agg(line ORDER BY line) FROM {table}")
    assert lines == ["in flight", "open at SIGTERM"]
    assert "waiting for 1 checked-out connection(s) to be returned" in output
    first, closing = await gone(postgres, name)
    assert postgres.password not in output
    stops = {}
    for line in output.splitlines():
        with contextlib.suppress(ValueError):
            record = json.loads(line)
            if record.get("phase") == "stop" and record.get("outcome") == "ok":
                stops[record["service"]] = record["duration"]
    assert set(stops) == {"writer", "db"}
    assert output.index("every connection was returned") < output.index("database pool disposed")
    print(
        f"\n[postgres SIGTERM] exit 0 in {exited:.3f} s after SIGTERM; stop writer "
        f"{stops['writer']:.4f} s, db (drain + dispose) {stops['db']:.4f} s; connections "
        f"with our application_name right after exit: {first} (checked in {closing:.3f} s)"
    )


# -- PostgreSQL through a synchronous driver (psycopg 3) --------------------------------------------


def psycopg_settings(
    tmp_path: Path, server: PostgresServer, name: str, **more: Any
) -> dict[str, Any]:
    url = server.url.replace("postgresql+asyncpg://", "postgresql+psycopg://")
    return settings_for(
        tmp_path, url, **{"database.connect_args": {"application_name": name}, **more}
    )


class SyncCommitsInStop(Service):
    """Holds a transaction open (synchronous connection) from start(); stop() commits it."""

    def __init__(self, db: DatabaseService, table: str) -> None:
        self.db, self.table = db, table
        self.connection: Any = None

    def _open(self) -> None:
        self.connection = self.db.engine.connect()
        self.connection.begin()
        self.connection.execute(text(f"INSERT INTO {self.table} VALUES ('from start')"))

    def _commit(self) -> None:
        self.connection.execute(text(f"INSERT INTO {self.table} VALUES ('from stop')"))
        self.connection.commit()
        self.connection.close()

    async def start(self) -> None:
        await anyio.to_thread.run_sync(self._open)

    async def stop(self) -> None:
        if self.connection is not None:
            await anyio.to_thread.run_sync(self._commit)


class SyncForgets(SyncCommitsInStop):
    """A bug: the transaction opened in start() is never committed nor closed."""

    async def stop(self) -> None:
        pass


@pytest.mark.postgres
@pytest.mark.anyio
async def test_postgres_psycopg_commits_in_stop_and_no_connection_survives(
    tmp_path: Path, postgres: PostgresServer, table: str
) -> None:
    """postgresql+psycopg://: a synchronous Engine; the dependent commits in stop(), health() is
    true while running, and no connection of the application is left afterwards."""
    from sqlalchemy.engine import Engine

    name = f"app-{secrets.token_hex(4)}"
    app = app_with(SyncCommitsInStop, table=table)(
        overrides=psycopg_settings(tmp_path, postgres, name)
    )
    async with app.running():
        db = db_of(app)
        assert isinstance(db.engine, Engine) and db.is_async is False
        assert await db.health() is True
        assert await connections_of(postgres, name) >= 1
    assert app.exit_code == 0
    assert await observe(postgres, f"SELECT count(*) FROM {table}") == 2
    await gone(postgres, name)


@pytest.mark.postgres
@pytest.mark.anyio
async def test_postgres_psycopg_connection_held_past_the_bound_is_rolled_back(
    tmp_path: Path, postgres: PostgresServer, table: str
) -> None:
    """A synchronous connection never returned: closed at the bound, rolled back, none left."""
    name = f"app-{secrets.token_hex(4)}"
    settings = psycopg_settings(tmp_path, postgres, name, **{"services.db.stop_timeout": 0.3})
    app = app_with(SyncForgets, table=table)(overrides=settings)
    await app.start()
    code = await app.stop()
    assert code == 1 and db_of(app).cut_off == 1
    assert await observe(postgres, f"SELECT count(*) FROM {table}") == 0
    await gone(postgres, name)
