"""Database URLs read without SQLAlchemy: the parts, the driver module, the usual mistakes.

`url_problem` is what `DatabaseSettings` checks at load time, so a URL that cannot be parsed, a
dialect SQLAlchemy does not know, a driver that is not installed or an option the driver does not
understand is a configuration error (exit 78, nothing started) and not a traceback at start. It
never repeats the URL: callers show it redacted (`framework._engine.secrets.redact`).

Importing this module is cheap (no SQLAlchemy); SQLAlchemy is imported only to look up a dialect
that is not in the table below.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs

__all__ = ("DatabaseUrl", "driver_of", "parse_url", "url_problem")

# SQLAlchemy's own URL pattern (sqlalchemy.engine.url._parse_url), so both read a URL alike.
_URL = re.compile(
    r"""
    (?P<name>[\w+]+)://
    (?:(?P<username>[^:/]*)(?::(?P<password>[^@]*))?@)?
    (?:(?:\[(?P<ipv6host>[^/?]+)\]|(?P<ipv4host>[^/:?]+))?(?::(?P<port>[^/?]*))?)?
    (?:/(?P<database>[^?]*))?
    (?:\?(?P<query>.*))?
    """,
    re.VERBOSE | re.DOTALL,
)

# dialect -> the driver SQLAlchemy uses when the URL names none
_DEFAULT_DRIVER = {
    "postgresql": "psycopg2",
    "sqlite": "pysqlite",
    "mysql": "mysqldb",
    "mariadb": "mysqldb",
    "oracle": "oracledb",
    "mssql": "pyodbc",
}
# driver -> (module to import, distribution to install; None: part of Python)
_DRIVERS: dict[str, tuple[str, str | None]] = {
    "asyncpg": ("asyncpg", "asyncpg"),
    "psycopg": ("psycopg", "psycopg[binary]"),
    "psycopg_async": ("psycopg", "psycopg[binary]"),
    "psycopg2": ("psycopg2", "psycopg2-binary"),
    "psycopg2cffi": ("psycopg2cffi", "psycopg2cffi"),
    "pg8000": ("pg8000", "pg8000"),
    "pysqlite": ("sqlite3", None),
    "aiosqlite": ("aiosqlite", "aiosqlite"),
    "pysqlcipher": ("sqlcipher3", "sqlcipher3"),
    "mysqldb": ("MySQLdb", "mysqlclient"),
    "pymysql": ("pymysql", "PyMySQL"),
    "aiomysql": ("aiomysql", "aiomysql"),
    "asyncmy": ("asyncmy", "asyncmy"),
    "mysqlconnector": ("mysql.connector", "mysql-connector-python"),
    "oracledb": ("oracledb", "oracledb"),
    "oracledb_async": ("oracledb", "oracledb"),
    "cx_oracle": ("cx_Oracle", "cx-Oracle"),
    "pyodbc": ("pyodbc", "pyodbc"),
    "aioodbc": ("aioodbc", "aioodbc"),
    "pymssql": ("pymssql", "pymssql"),
}
_EXTRAS = {"asyncpg": "framework[postgres]"}
_EXAMPLE = (
    "dialect+driver://user@host:port/database, like postgresql+asyncpg://app@127.0.0.1:5432/app"
)


@dataclass(frozen=True)
class DatabaseUrl:
    """The parts of a database URL (the password kept out of its repr)."""

    dialect: str
    driver: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: str | None = None
    database: str | None = None
    query: dict[str, list[str]] = field(default_factory=dict)


def parse_url(url: str) -> DatabaseUrl | None:
    """The parts of ``url``, or None when it is not ``dialect[+driver]://...``."""
    m = _URL.fullmatch(url.strip())
    if m is None:
        return None
    dialect, _, driver = m["name"].partition("+")
    return DatabaseUrl(
        dialect=dialect,
        driver=driver or _DEFAULT_DRIVER.get(dialect, ""),
        username=m["username"],
        password=m["password"],
        host=m["ipv6host"] or m["ipv4host"],
        port=m["port"] or None,
        database=m["database"],
        query=parse_qs(m["query"] or "", keep_blank_values=True),
    )


def driver_of(url: str) -> str | None:
    """The driver a URL uses (``asyncpg``, ``aiosqlite``, ``psycopg2`` for plain postgresql)."""
    parsed = parse_url(url)
    return parsed.driver if parsed is not None else None


def url_problem(url: str) -> str | None:
    """What is wrong with ``url`` and what to do, or None. Never repeats the URL."""
    parsed = parse_url(url)
    if parsed is None:
        return f"cannot be parsed as a database URL; expected {_EXAMPLE}"
    if parsed.dialect == "postgres":
        return "SQLAlchemy has no dialect 'postgres': write postgresql+asyncpg://... instead"
    if parsed.port is not None and not parsed.port.isdigit():
        return "the port is not a number; expected host:port, like 127.0.0.1:5432"
    if parsed.driver == "asyncpg" and "sslmode" in parsed.query:
        return "asyncpg does not understand ?sslmode=...: write ?ssl=require (or ssl=verify-full)"
    known = _DRIVERS.get(parsed.driver)
    if parsed.dialect not in _DEFAULT_DRIVER or known is None:
        return _plugin_problem(parsed)
    module, distribution = known
    if not _installed(module):
        extra = f" (or {_EXTRAS[parsed.driver]})" if parsed.driver in _EXTRAS else ""
        hint = ""
        if parsed.dialect == "postgresql" and "+" not in url.partition("://")[0]:
            hint = "; or, for the async driver, write postgresql+asyncpg://..."
        return (
            f"the driver {parsed.driver!r} of {parsed.dialect}+{parsed.driver} is not installed: "
            f"pip install {distribution}{extra}{hint}"
        )
    return None


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a dotted name whose parent is missing
        return False


def _plugin_problem(parsed: DatabaseUrl) -> str | None:
    """A dialect or driver outside the table: ask SQLAlchemy's registry (imported only here)."""
    from sqlalchemy.dialects import registry

    name = f"{parsed.dialect}+{parsed.driver}" if parsed.driver else parsed.dialect
    try:
        dialect = registry.load(name.replace("+", "."))
    except Exception:
        return (
            f"SQLAlchemy has no dialect {name!r} installed; check the spelling "
            "(postgresql+asyncpg, sqlite+aiosqlite, mysql+aiomysql, ...) or install its package"
        )
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return f"the driver of {name} is not installed: pip install {exc.name or 'its package'}"
    except Exception:  # noqa: S110 (a plugin that fails here fails the same way at start)
        pass
    return None
