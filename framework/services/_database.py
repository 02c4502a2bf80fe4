"""The built-in database service: a SQLAlchemy engine, drained before it is disposed.

An async driver URL (``sqlite+aiosqlite://``, ``postgresql+asyncpg://``) gives an `AsyncEngine`
and an ``async_sessionmaker``; a synchronous one (``sqlite:///``, ``postgresql+psycopg://``,
``postgresql+psycopg2://``) gives an `Engine` and a ``sessionmaker``, for synchronous code such as
FastAPI's plain ``def`` endpoints (run in threads). Both are checked, drained and disposed alike;
the synchronous engine's blocking calls run in worker threads, never on the event loop.

``start()`` creates the engine and runs ``SELECT 1``, so a wrong ``database.url`` fails the startup
with a message naming the URL (password masked). ``stop()`` runs after every service that depends on
the database has stopped; it then

1. waits for the connections still checked out of the pool to be returned (an event fired by the
   pool's ``checkin``, no polling);
2. disposes of the pool, closing every connection.

``AsyncEngine.dispose()`` alone only closes the connections that are checked in: one still checked
out would outlive the application, holding its transaction open. If the stop bound expires first,
the connections still out are closed (their open transactions roll back on the server), counted in
`DatabaseService.cut_off`, the pool is disposed anyway (shielded, for at most `DISPOSE_GRACE`
seconds) and the cancellation propagates, so the framework reports the stop as timed out.

The service runs on asyncio only (SQLAlchemy's async engine needs it, and the pool's events reach
the loop through it). SQLAlchemy is imported by ``start()``: importing `framework` stays cheap.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, TypeGuard

import anyio

from framework._config.settings import DatabaseSettings
from framework._engine.errors import FrameworkError
from framework._engine.secrets import redact
from framework._engine.service import Service
from framework.services._asyncio import require_asyncio
from framework.services._cutoff import refuse_cut_off_commit
from framework.services._instruments import instrument_engine
from framework.services._pool import CheckedOut

if TYPE_CHECKING:
    from loguru import Logger
    from sqlalchemy.engine import URL, Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from framework._runtime.context import ServiceContext

__all__ = ("DISPOSE_GRACE", "DatabaseService", "DatabaseSettings")

DISPOSE_GRACE = 1.0
"""Seconds that closing the cut-off connections and disposing of the pool may take once the stop
bound expired (shielded from the cancellation)."""

_QUEUE_POOL_OPTIONS = ("pool_size", "max_overflow", "pool_timeout")


class DatabaseService(Service):
    """A SQLAlchemy engine (``.engine``) and session factory (``.sessions``).

    Both are available once ``start()`` returned: an `AsyncEngine` and an ``async_sessionmaker``
    for an async driver URL, an `Engine` and a ``sessionmaker`` for a synchronous one
    (``is_async`` tells which). A service that depends on this one (its provider takes ``db=db``,
    or its code is wired to it) is stopped first, so its ``stop()`` can still commit.
    """

    def __init__(self, settings: DatabaseSettings) -> None:
        self.settings = settings
        self.cut_off = 0
        """Connections still checked out when the stop bound expired, closed by ``stop()``."""
        self.is_async: bool | None = None
        """True for an async driver URL, False for a synchronous one; None before ``start()``."""
        self._engine: AsyncEngine | Engine | None = None
        self._health_engine: AsyncEngine | Engine | None = None
        self._sessions: Any = None
        self._checked_out: CheckedOut | None = None
        self._stopped = False
        from loguru import logger

        self._log: Logger = logger.bind(service="database", url=_safe(settings.url))

    def _framework_attach(self, context: ServiceContext) -> None:
        """Called by the application before any service starts: log under the service's name."""
        from loguru import logger

        self._log = logger.bind(service=context.name, url=_safe(self.settings.url))

    # -- what the application uses --------------------------------------------------------------

    @property
    def engine(self) -> Any:
        """The `AsyncEngine` (async URL) or `Engine` (synchronous URL); raises `FrameworkError`
        before ``start()`` and after ``stop()``."""
        if self._engine is None:
            raise self._not_running(".engine")
        return self._engine

    @property
    def sessions(self) -> Any:
        """An ``async_sessionmaker`` (async URL) or ``sessionmaker`` (synchronous URL) bound to
        the engine, with ``expire_on_commit=False``."""
        if self._sessions is None:
            raise self._not_running(".sessions")
        return self._sessions

    @property
    def checked_out(self) -> int:
        """Connections currently checked out of the pool."""
        return len(self._checked_out) if self._checked_out is not None else 0

    async def health(self) -> bool:
        """True when ``SELECT 1`` answers within ``database.health_timeout`` seconds, on a
        connection of its own: opened for the check, outside the application's pool (a pool
        busy with traffic is load, not a sick database), bounded by the driver's own connect
        timeout where it has one. It proves the database accepts a new connection and answers."""
        engine = self._health_engine
        if engine is None:
            return False
        with anyio.move_on_after(self.settings.health_timeout):
            try:
                await _select_one(engine)
            except Exception as exc:
                self._log.warning(f"database health check failed: {self._describe(exc)}")
                return False
            return True
        self._log.warning(
            f"database health check: no answer within {self.settings.health_timeout:g} s "
            "(database.health_timeout)"
        )
        return False

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the engine and check the database answers ``SELECT 1``."""
        loop = require_asyncio("DatabaseService", "SQLAlchemy's async engine runs on asyncio")
        if self._engine is not None or self._stopped:
            raise FrameworkError("this DatabaseService was already started; create a new one")
        engine = self._create_engine()
        self.is_async = _is_async(engine)
        self._engine, self._checked_out = engine, CheckedOut.watch(_core(engine), loop)
        from sqlalchemy import event

        event.listen(_core(engine), "commit", refuse_cut_off_commit)  # see services._cutoff
        instrument_engine(_core(engine))  # a span per statement while telemetry runs
        safe_url = _safe(self.settings.url)
        try:
            await _select_one(engine)
        except anyio.get_cancelled_exc_class():
            self._log.warning(f"start cancelled while connecting to {safe_url} (database.url)")
            await self._dispose(engine, grace_ends=anyio.current_time() + DISPOSE_GRACE)
            raise
        except Exception as exc:
            await self._dispose(engine, grace_ends=anyio.current_time() + DISPOSE_GRACE)
            raise FrameworkError(
                f"database.url {safe_url!r}: cannot connect: {self._describe(exc)}; {self._hint()}"
            ) from None
        self._sessions = _session_factory(engine)
        self._health_engine = self._create_engine(for_health=True)
        mode = "" if self.is_async else ", synchronous"
        self._log.info(
            f"database ready: {safe_url} ({engine.dialect.name}{mode}, {type(engine.pool).__name__})"
        )

    async def stop(self) -> None:
        """Wait for checked-out connections to come back, then dispose of the pool.

        Cancelled by the framework when the stop bound expires: the connections still out are
        closed and counted in ``cut_off``, the pool is disposed anyway, the cancellation propagates.
        """
        engine, checked_out = self._engine, self._checked_out
        if engine is None or checked_out is None:
            return  # never started, or the start failed and cleaned up
        began = anyio.current_time()
        try:
            if held := len(checked_out):
                self._log.info(f"waiting for {held} checked-out connection(s) to be returned")
                await checked_out.wait_until_none()
                self._log.info(
                    f"every connection was returned in {anyio.current_time() - began:.3f} s"
                )
            await self._dispose(engine)
        except anyio.get_cancelled_exc_class():
            grace_ends = anyio.current_time() + DISPOSE_GRACE
            self.cut_off = len(checked_out)
            if self.cut_off:
                self._log.bind(cut_off=self.cut_off).warning(
                    f"stop bound expired after {anyio.current_time() - began:.3f} s with "
                    f"{self.cut_off} connection(s) still checked out: closing them, their open "
                    "transactions roll back; commit or close connections in the stop() of the "
                    "services that use them"
                )
                with anyio.CancelScope(deadline=grace_ends, shield=True):
                    await checked_out.close_all(self._log, in_thread=not _is_async(engine))
            await self._dispose(engine, grace_ends=grace_ends)
            raise

    # -- helpers --------------------------------------------------------------------------------

    def _create_engine(self, *, for_health: bool = False) -> AsyncEngine | Engine:
        """The application's engine, or (``for_health``) one that opens a connection of its own
        for each health check (no pool), with the driver's connect timeout set to the check's."""
        from sqlalchemy import create_engine
        from sqlalchemy.engine import make_url
        from sqlalchemy.engine.default import DefaultDialect
        from sqlalchemy.ext.asyncio import create_async_engine
        from sqlalchemy.pool import QueuePool

        settings, safe_url = self.settings, _safe(self.settings.url)
        try:
            url = make_url(settings.url)
            dialect = url.get_dialect()
            pool_class = (
                dialect.get_pool_class(url) if issubclass(dialect, DefaultDialect) else QueuePool
            )
        except Exception as exc:
            raise FrameworkError(
                f"database.url {safe_url!r} is not usable: {self._describe(exc)}; expected a "
                "URL like sqlite+aiosqlite:///./app.db or "
                "postgresql+asyncpg://user:password@host:5432/name (async), or sqlite:///./app.db "
                "or postgresql+psycopg://user:password@host:5432/name (synchronous)"
            ) from None
        options: dict[str, Any] = {
            "pool_pre_ping": settings.pool_pre_ping,
            "pool_recycle": settings.pool_recycle,
            "connect_args": settings.connect_args,
        }
        if for_health:
            from sqlalchemy.pool import NullPool

            connect = _connect_timeout(url.get_driver_name(), settings.health_timeout)
            options = {"poolclass": NullPool, "connect_args": {**connect, **settings.connect_args}}
        elif issubclass(pool_class, QueuePool):  # SQLite in memory uses StaticPool, with no size
            options.update({key: getattr(settings, key) for key in _QUEUE_POOL_OPTIONS})
        if settings.echo and not for_health:
            self._echo_to_logging(options)
        create = create_async_engine if getattr(dialect, "is_async", False) else create_engine
        try:
            return create(url, **options)
        except ModuleNotFoundError as exc:
            raise FrameworkError(
                f"database.url {safe_url!r}: the driver {exc.name!r} is not installed; install "
                f"it (pip install {exc.name}) or name an installed driver in the URL, like "
                "postgresql+asyncpg:// or postgresql+psycopg://"
            ) from None
        except Exception as exc:
            raise FrameworkError(
                f"database.url {safe_url!r}: cannot create the engine: {self._describe(exc)}; "
                "use a driver SQLAlchemy knows (sqlite+aiosqlite, postgresql+asyncpg; "
                "synchronous: sqlite, postgresql+psycopg, postgresql+psycopg2)"
            ) from None

    @staticmethod
    def _echo_to_logging(options: dict[str, Any]) -> None:
        """``echo``: statements logged at INFO through the logging the application set up.

        SQLAlchemy's own ``echo=True`` adds a stdout handler of its own, which would print every
        statement twice once the framework routes stdlib logging into loguru; it is used only
        when nothing handles the root logger.
        """
        if logging.getLogger().handlers:
            logging.getLogger("sqlalchemy.engine").setLevel(logging.INFO)
        else:
            options["echo"] = True

    async def _dispose(
        self, engine: AsyncEngine | Engine, *, grace_ends: float | None = None
    ) -> None:
        """Close the pool's connections; past a cancellation, shielded until ``grace_ends``."""
        self._engine = self._sessions = self._health_engine = None
        self._stopped = True
        shielded = grace_ends is not None
        with anyio.CancelScope(deadline=grace_ends or math.inf, shield=shielded):
            if _is_async(engine):
                await engine.dispose()
            else:  # a blocking close of every connection: in a thread, abandoned past the grace
                await anyio.to_thread.run_sync(engine.dispose, abandon_on_cancel=True)
            self._log.info("database pool disposed")
            return
        self._log.error(
            f"the pool was not disposed within {DISPOSE_GRACE:g} s (DISPOSE_GRACE) after the stop "
            "bound expired; its connections close when the process exits"
        )

    def _describe(self, exc: BaseException) -> str:
        """``Type: message`` of the driver's error, without any password."""
        cause: BaseException = getattr(exc, "orig", None) or exc  # DBAPIError wraps the driver's
        while type(cause).__module__.startswith("sqlalchemy") and cause.__cause__ is not None:
            cause = cause.__cause__  # an adapted driver error: the driver's own says more
        text = f"{type(cause).__name__}: {cause}".strip().rstrip(":")
        password = _password(self.settings.url)
        if password:
            text = text.replace(password, "***")
        return _safe(text)

    def _hint(self) -> str:
        if self.settings.url.startswith("sqlite"):
            return "check that the file's directory exists and is writable"
        return (
            "check that the server is running and reachable at that host and port, and the "
            "user, password and database name"
        )

    def _not_running(self, attribute: str) -> FrameworkError:
        when = "once stopped (or after a failed start)" if self._stopped else "before start()"
        return FrameworkError(
            f"DatabaseService{attribute} is not available {when}: it exists while the service "
            "runs; use it from a service that depends on the database (its provider takes db=db)"
        )


def _is_async(engine: AsyncEngine | Engine) -> TypeGuard[AsyncEngine]:
    from sqlalchemy.ext.asyncio import AsyncEngine

    return isinstance(engine, AsyncEngine)


def _connect_timeout(driver: str, seconds: float) -> dict[str, Any]:
    """The driver's own connect timeout, as its connect argument (none for SQLite's drivers)."""
    if driver == "asyncpg":
        return {"timeout": seconds}
    if driver in {"psycopg", "psycopg2", "psycopg_async"}:
        return {"connect_timeout": max(1, math.ceil(seconds))}
    return {}


async def _select_one(engine: AsyncEngine | Engine) -> None:
    """``SELECT 1`` on a fresh connection; a synchronous engine's in a worker thread, abandoned
    (left to finish on its own) if the caller is cancelled."""
    from sqlalchemy import text

    if _is_async(engine):
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
        return
    sync_engine = _core(engine)

    def check() -> None:
        with sync_engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    await anyio.to_thread.run_sync(check, abandon_on_cancel=True)


def _session_factory(engine: AsyncEngine | Engine) -> Any:
    if _is_async(engine):
        from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

        return async_sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
    from sqlalchemy.orm import sessionmaker

    return sessionmaker(_core(engine), expire_on_commit=False)


def _core(engine: AsyncEngine | Engine) -> Engine:
    """The synchronous `Engine`: the engine itself, or the one an `AsyncEngine` wraps."""
    if _is_async(engine):
        return engine.sync_engine
    return engine  # type: ignore[return-value]


def _safe(text: str) -> str:
    """``text`` with any password in a URL masked."""
    return str(redact(text))


def _password(url: str) -> str | None:
    try:
        from sqlalchemy.engine import make_url

        parsed: URL = make_url(url)
    except Exception:
        return None
    return parsed.password if isinstance(parsed.password, str) and parsed.password else None
