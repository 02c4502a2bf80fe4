"""A throwaway PostgreSQL server for the tests: initdb, then pg_ctl start, in a temporary directory.

PostgreSQL refuses to run as root: when the tests run as root, every server command runs as the
``postgres`` OS user (``runuser``), in a directory owned by it. The server listens on 127.0.0.1
only, on a free port, with its Unix socket in that directory; ``stop()`` stops it (``-m fast``) and
removes the directory.
"""

from __future__ import annotations

import glob
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tests._process import free_port

__all__ = ("PostgresServer", "ServerCommandError", "find_bindir", "free_port")

OS_USER = "postgres"
DB_USER = "postgres"


def find_bindir() -> Path | None:
    """The directory holding ``initdb`` and ``pg_ctl``, or None when PostgreSQL is not installed.

    Debian installs them in /usr/lib/postgresql/<major>/bin (not on PATH); the newest wins.
    """

    def major(path: str) -> int:
        found = re.search(r"/postgresql/(\d+)/", path)
        return int(found.group(1)) if found else 0

    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True):
        if (Path(candidate) / "initdb").is_file() and (Path(candidate) / "pg_ctl").is_file():
            return Path(candidate)
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        bindir = Path(out.stdout.strip())
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl and Path(initdb).parent == Path(pg_ctl).parent:
        return Path(initdb).parent
    return None


@dataclass
class PostgresServer:
    """A running server: connect as ``postgres`` with ``password`` to 127.0.0.1:``port``."""

    bindir: Path
    root: Path
    port: int
    password: str

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        """The SQLAlchemy async URL of the ``postgres`` database."""
        return f"postgresql+asyncpg://{DB_USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @property
    def dsn(self) -> str:
        """The libpq/asyncpg DSN of the ``postgres`` database."""
        return f"postgresql://{DB_USER}:{self.password}@127.0.0.1:{self.port}/postgres"

    @classmethod
    def start(cls, bindir: Path, *, attempts: int = 3) -> PostgresServer:
        """initdb (scram-sha-256 auth) and start a server; retry on a port taken meanwhile."""
        root = Path(tempfile.mkdtemp(prefix="framework-pg-"))
        try:
            password = secrets.token_hex(12)
            (root / "pwfile").write_text(password + "\n", encoding="utf-8")
            _own(root)
            _as_server_user(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(root / "data"),
                    "-U",
                    DB_USER,
                    "--auth=scram-sha-256",
                    f"--pwfile={root / 'pwfile'}",
                    "--no-sync",
                    "--encoding=UTF8",
                    "--locale=C",
                ],
                cwd=root,
            )
            for attempt in range(attempts):
                server = cls(bindir, root, free_port(), password)
                try:
                    server._pg_ctl_start()
                except ServerCommandError:
                    if attempt == attempts - 1:
                        raise
                    continue
                return server
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        raise AssertionError("unreachable")

    def _pg_ctl_start(self) -> None:
        options = " ".join(
            [
                "-c listen_addresses=127.0.0.1",
                f"-p {self.port}",
                f"-c unix_socket_directories={self.root}",
                "-c fsync=off",
                "-c full_page_writes=off",
                "-c max_connections=50",
            ]
        )
        _as_server_user(
            [
                str(self.bindir / "pg_ctl"),
                "start",
                "-D",
                str(self.data),
                "-l",
                str(self.root / "server.log"),
                "-w",
                "-t",
                "60",
                "-o",
                options,
            ],
            cwd=self.root,
            log=self.root / "server.log",
        )

    def stop(self) -> None:
        """Stop the server (fast: clients disconnected) and remove its directory."""
        try:
            _as_server_user(
                [str(self.bindir / "pg_ctl"), "stop", "-D", str(self.data), "-m", "fast", "-w"],
                cwd=self.root,
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


class ServerCommandError(RuntimeError):
    """initdb or pg_ctl failed; the message holds their output and the server's log."""


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _own(root: Path) -> None:
    """Give ``root`` (and what is in it) to the server's OS user when running as root."""
    if not _running_as_root():
        return
    try:
        shutil.chown(root, OS_USER, OS_USER)
        for path in root.rglob("*"):
            shutil.chown(path, OS_USER, OS_USER)
    except LookupError as exc:
        raise RuntimeError(
            f"running as root, PostgreSQL needs an OS user {OS_USER!r} to run as: {exc}"
        ) from exc


def _as_server_user(command: list[str], *, cwd: Path, log: Path | None = None) -> None:
    if _running_as_root():
        command = ["runuser", "-u", OS_USER, "--", *command]
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        server_log = log.read_text(errors="replace") if log is not None and log.exists() else ""
        raise ServerCommandError(
            f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}{done.stderr}{server_log}"
        )
