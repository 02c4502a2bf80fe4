"""`Settings`: the framework's configuration model; applications subclass it to add sections.

Values are loaded by `framework._config.load.load_settings` from files, ``.env``, environment variables and
overrides (see that module for the precedence). The settings models of the built-in services live
here too (their service modules re-export them): models that import nothing of the framework (the
URL check imports `framework._config.dburl` when it first runs). Their validators also check what a value
needs from the machine (a log file that can be opened for appending, a rotation loguru understands,
an installed database driver) without creating anything, so `framework check` finds these before
anything starts.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

__all__ = (
    "MAX_SECONDS",
    "DatabaseSettings",
    "HttpSettings",
    "LifecycleSettings",
    "LoggingSettings",
    "ProcessSettings",
    "SentrySettings",
    "ServiceSettings",
    "Settings",
    "TelemetrySettings",
)


MAX_SECONDS = 7 * 24 * 3600
"""The longest bound any setting accepts (7 days): every timeout is a finite number of seconds."""


def _seconds(default: float | None, description: str, *, zero: bool = False) -> Any:
    """A field holding seconds: finite, positive (or zero when ``zero``), at most `MAX_SECONDS`."""
    if zero:
        return Field(default, ge=0, le=MAX_SECONDS, allow_inf_nan=False, description=description)
    return Field(default, gt=0, le=MAX_SECONDS, allow_inf_nan=False, description=description)


class LifecycleSettings(BaseModel):
    """Settings section ``lifecycle``: every bound in seconds."""

    model_config = ConfigDict(extra="forbid")

    start_timeout: float = _seconds(30.0, "Default bound for one service's start().")
    stop_timeout: float = _seconds(10.0, "Default bound for one service's stop().")
    startup_timeout: float = _seconds(60.0, "Bound for the whole startup.")
    shutdown_timeout: float = _seconds(
        30.0, "Bound for the whole shutdown; each stop gets min(its own bound, what is left)."
    )
    shutdown_delay: float = _seconds(
        0.0,
        "After shutdown begins, readiness reports not-ready and traffic is still served "
        "for this long before services stop.",
        zero=True,
    )
    grace_period: float | None = _seconds(
        None,
        "The platform's grace period between SIGTERM and SIGKILL (Kubernetes "
        "terminationGracePeriodSeconds); `framework check` verifies the budget fits in it.",
    )
    health_interval: float = _seconds(
        5.0, "While the application runs, each service's health() is called this often."
    )
    health_timeout: float = _seconds(
        1.0, "Bound for one health() call; a timeout or an exception counts as unhealthy."
    )


class ServiceSettings(BaseModel):
    """Settings section ``services.<name>``: per-service bounds, overriding class attributes, and
    the restart policy of the service's ``run()``."""

    model_config = ConfigDict(extra="forbid")

    start_timeout: float | None = _seconds(None, "Bound for this service's start().")
    stop_timeout: float | None = _seconds(None, "Bound for this service's stop().")
    drain_timeout: float | None = _seconds(
        None,
        "At shutdown: seconds its run() (one that reads self.stopping) and its spawned tasks may "
        "take to finish on their own before they are cancelled; None: its stop bound.",
    )
    restart: Literal["never", "on-failure"] = Field(
        "never",
        description="on-failure: a run() that raises is stopped and started again after a "
        "backoff; never: the application shuts down (exit 1).",
    )
    restart_max: int = Field(
        3, ge=0, description="More restarts than this within restart_window: shut down, exit 1."
    )
    restart_window: float = _seconds(
        60.0, "The window (seconds) in which restart_max restarts are counted."
    )
    restart_backoff: float = _seconds(
        0.5, "Seconds before the first restart; doubles, at most 30 s."
    )


class HttpSettings(BaseModel):
    """Settings section ``http``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1", description="Interface to bind; 0.0.0.0 to accept outside traffic."
    )
    port: int = Field(8000, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    # Embedded, uvicorn serves on the application's event loop: `Application.run()` picks uvloop
    # for `auto` (when installed) and `uvloop` (framework/services/http/_loop.py).
    loop: Literal["auto", "asyncio", "uvloop"] = Field("auto", description="uvicorn event loop.")
    http: Literal["auto", "h11", "httptools"] = Field(
        "auto", description="HTTP/1.1 implementation."
    )
    timeout_keep_alive: float = _seconds(5.0, "Seconds an idle keep-alive connection stays open.")
    backlog: int = Field(2048, gt=0, le=65535, description="Listen backlog of the socket.")
    limit_concurrency: int | None = Field(
        None, gt=0, description="Answer 503 above this many concurrent connections."
    )
    proxy_headers: bool = Field(False, description="Trust X-Forwarded-* from forwarded_allow_ips.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Comma-separated proxies trusted for proxy headers."
    )
    root_path: str = Field("", description="ASGI root_path when served under a path prefix.")
    access_log: bool = Field(True, description="Log one line per request.")
    livez_path: str = Field(
        "/livez", description="Liveness probe path: 200 while the event loop runs."
    )
    readyz_path: str = Field(
        "/readyz", description="Readiness probe path: 200 only when every service has started."
    )
    readyz_details: bool = Field(
        False, description="Include each service's state in the /readyz JSON body."
    )
    metrics_path: str | None = Field(
        None, description="Serve Prometheus metrics at this path; None: off."
    )

    @field_validator("livez_path", "readyz_path", "metrics_path")
    @classmethod
    def _absolute_path(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError(f"must start with '/', like '/{value}'")
        return value


class DatabaseSettings(BaseModel):
    """Settings section ``database``."""

    # a pydantic error text must not show the URL (its password), not even once
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(
        "sqlite+aiosqlite:///./app.db",
        description="SQLAlchemy async URL; the password is never printed.",
    )
    pool_size: int = Field(5, ge=1, description="Connections kept open in the pool.")
    max_overflow: int = Field(10, ge=0, description="Extra connections allowed above pool_size.")
    pool_timeout: float = _seconds(30.0, "Seconds to wait for a free connection.")
    pool_recycle: float = Field(
        -1,
        ge=-1,
        le=MAX_SECONDS,
        allow_inf_nan=False,
        description="Seconds after which a connection is replaced; -1: never.",
    )
    pool_pre_ping: bool = Field(True, description="Test connections on checkout.")
    echo: bool = Field(False, description="Log every SQL statement.")
    connect_args: dict[str, Any] = Field(
        default_factory=dict, description="Passed to the DBAPI connect()."
    )
    health_timeout: float = _seconds(
        2.0, "Seconds health() waits for SELECT 1 before reporting unhealthy."
    )

    @field_validator("url")
    @classmethod
    def _usable_url(cls, value: str) -> str:
        from framework._config.dburl import (
            url_problem,  # on first use: `import framework` stays lean
        )

        problem = url_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class LoggingSettings(BaseModel):
    """Settings section ``logging``."""

    model_config = ConfigDict(extra="forbid")

    level: Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"] = Field(
        "INFO", description="Lowest level written."
    )
    format: Literal["text", "json"] = Field(
        "text", description="text for people, json (one object per line) for collectors."
    )
    stderr: bool = Field(True, description="Write to standard error.")
    file: Path | None = Field(None, description="Also write to this file; None: no file.")
    rotation: str | None = Field(None, description="Rotate the file, e.g. '100 MB' or '1 day'.")
    retention: str | int | None = Field(
        None, description="Delete rotated files, e.g. '7 days' or '10 files'."
    )
    enqueue: bool = Field(False, description="Write from a background thread (drained at exit).")
    stdlib: bool = Field(
        True,
        description="Route the standard logging module (uvicorn, SQLAlchemy, ...) into loguru.",
    )

    @field_validator("file")
    @classmethod
    def _appendable(cls, value: Path | None) -> Path | None:
        problem = _log_file_problem(value) if value is not None else None
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("rotation")
    @classmethod
    def _parsable_rotation(cls, value: str | None) -> str | None:
        if value is not None:
            _loguru_parses("rotation", value, "'100 MB', '1 day', '00:00' or 'monday at 12:00'")
        return value

    @field_validator("retention")
    @classmethod
    def _parsable_retention(cls, value: str | int | None) -> str | int | None:
        """``'10 files'`` keeps ten files (loguru takes that as the number 10); a duration
        (``'7 days'``) deletes older ones."""
        if isinstance(value, str) and (files := _FILES.fullmatch(value.strip())):
            return int(files[1])
        if isinstance(value, int) and value < 1:
            raise ValueError("a number of files to keep is at least 1")
        if isinstance(value, str):
            _loguru_parses("retention", value, "'7 days', '1 week' or '10 files'")
        return value


_FILES = re.compile(r"(\d+)\s*files?", re.IGNORECASE)


def _log_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened for appending, found without leaving anything behind; or
    None. An existing file is opened for appending (and closed); for a new one, a probe file is
    created and removed in its nearest existing directory (``os.access`` answers yes to root on
    a read-only or virtual file system such as ``/sys``)."""
    try:
        if path.is_symlink() and not path.exists():  # a dangling link: appending creates its target
            target = Path(os.path.realpath(path))
            if target.is_symlink() or not target.parent.is_dir():
                return f"is a link to {target}, which cannot be created (no such directory)"
            problem = _probe_problem(target.parent)
            return None if problem is None else f"is a link to {target}, which {problem}"
        if path.is_dir():
            return "is a directory; name a file in it, like app.log"
        if path.exists():
            return _append_problem(path)
        ancestor = next((p for p in path.parents if p.exists()), Path(path.anchor or "."))
        if not ancestor.is_dir():
            return f"cannot be created: {ancestor} is a file, not a directory"
        if not os.access(ancestor, os.W_OK | os.X_OK):
            return f"cannot be created: the directory {ancestor} is not writable"
        return _probe_problem(ancestor)
    except OSError as exc:
        return f"cannot be checked: {exc.strerror or exc}"


def _append_problem(path: Path) -> str | None:
    """Open an existing file for appending (never blocking on a FIFO), close it."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_NONBLOCK | os.O_NOCTTY
    try:
        os.close(os.open(path, flags))
    except OSError as exc:
        return f"cannot be opened for appending: {(exc.strerror or str(exc)).lower()}"
    return None


def _probe_problem(directory: Path) -> str | None:
    """Create and remove a probe file in ``directory``: whether a file can be created there."""
    import tempfile

    try:
        fd, probe = tempfile.mkstemp(prefix=".framework-probe-", dir=directory)
    except OSError as exc:
        return f"cannot be created in {directory}: {(exc.strerror or str(exc)).lower()}"
    os.close(fd)
    os.unlink(probe)
    return None


def _loguru_parses(key: str, value: str, examples: str) -> None:
    """Raise ValueError when loguru cannot parse ``value`` as a rotation or retention."""
    from framework._compat import loguru  # loguru's own parsers: no file is touched

    check = loguru.check_rotation if key == "rotation" else loguru.check_retention
    try:
        check(value)
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"loguru cannot parse this {key}; write it like {examples}") from None


class ProcessSettings(BaseModel):
    """Settings section ``process``: worker processes under a supervisor (0: no supervisor)."""

    model_config = ConfigDict(extra="forbid")

    workers: int = Field(
        0,
        ge=0,
        description="Worker processes sharing the HTTP sockets under a supervisor; 0: run in "
        "this process, no supervisor.",
    )
    ready_timeout: float = Field(
        60.0,
        gt=0,
        description="Bound for a new worker to report ready (READY=1); a rolling restart stops "
        "at a worker that does not.",
    )
    restart_backoff: float = Field(
        0.5, gt=0, description="Seconds before replacing a worker that died, at first; doubles."
    )
    restart_backoff_max: float = Field(
        30.0, gt=0, description="Most seconds before replacing a worker that died."
    )
    max_requests: int = Field(
        0,
        ge=0,
        description="Replace a worker (the rolling way) once it has served this many HTTP "
        "requests plus a random 0..max_requests_jitter; 0: never.",
    )
    max_requests_jitter: int = Field(
        0, ge=0, description="Spreads max_requests so that workers do not recycle together."
    )
    max_memory_mib: float = Field(
        0,
        ge=0,
        description="Replace a worker (the rolling way) whose resident memory exceeds this many "
        "MiB; 0: never.",
    )
    worker_timeout: float = Field(
        30.0,
        ge=0,
        description="Seconds a worker's event loop may go without reporting to the supervisor "
        "before it counts as hung: its stacks are logged, it is killed and replaced; 0: off.",
    )


class TelemetrySettings(BaseModel):
    """Settings section ``telemetry`` (`framework.services.TelemetryService`, extra ``otel``)."""

    model_config = ConfigDict(extra="forbid")

    service_name: str | None = Field(
        None, description="service.name of every span; None: the application class name."
    )
    endpoint: str = Field(
        "http://127.0.0.1:4318",
        description="OTLP/HTTP base URL: spans go to <endpoint>/v1/traces, metrics to /v1/metrics.",
    )
    headers: dict[str, SecretStr] = Field(
        default_factory=dict, description="Headers of every export request (secret: never shown)."
    )
    sample_ratio: float = Field(
        1.0, ge=0.0, le=1.0, description="Share of traces recorded (parent-based), 0.0 to 1.0."
    )

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                f"{value!r} is not an http:// or https:// URL; set it to the collector's "
                "OTLP/HTTP address, like http://127.0.0.1:4318"
            )
        return value.rstrip("/")


class SentrySettings(BaseModel):
    """Settings section ``sentry`` (`framework.services.SentryService`, extra ``sentry``)."""

    model_config = ConfigDict(extra="forbid")

    dsn: SecretStr | None = Field(
        None, description="The project's DSN (secret); None: send nothing."
    )
    environment: str | None = Field(None, description="The environment events are tagged with.")
    traces_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Share of transactions sent to Sentry, 0.0 to 1.0."
    )


class Settings(BaseSettings):
    """The framework's settings. Subclass to add sections of your own.

    Environment variables use the prefix ``APP_`` and ``__`` for nesting
    (``APP_LIFECYCLE__SHUTDOWN_TIMEOUT=5``); change the prefix with
    ``model_config = SettingsConfigDict(env_prefix="MYAPP_")`` in a subclass.
    """

    model_config = SettingsConfigDict(
        env_prefix="APP_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    lifecycle: LifecycleSettings = Field(default_factory=LifecycleSettings)
    services: dict[str, ServiceSettings] = Field(
        default_factory=dict, description="Per-service bounds, keyed by service name."
    )
    http: HttpSettings = Field(default_factory=HttpSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    process: ProcessSettings = Field(default_factory=ProcessSettings)
    telemetry: TelemetrySettings = Field(default_factory=TelemetrySettings)
    sentry: SentrySettings = Field(default_factory=SentrySettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # framework._config.load.load_settings reads every layer itself, to know where each value came
        # from; the model only validates what it is given.
        return (init_settings,)

    def service(self, name: str) -> ServiceSettings:
        """The ``services.<name>`` section (empty when not configured)."""
        return self.services.get(name) or ServiceSettings()
