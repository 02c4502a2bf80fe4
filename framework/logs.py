"""Logging setup: loguru, with stdlib logging routed into it; set up first, flushed last.

The application calls `setup_logging` before the first service starts and `LogSink.flush` after
the last one stops, on every exit path: ``await logger.complete()`` then ``logger.remove()``, so
coroutine sinks and ``enqueue=True`` queues are drained. A forced exit from a watchdog thread uses
`LogSink.flush_sync`.

How lifecycle events become log lines is `framework.messages`; this module only sets up the sinks.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import traceback
from collections.abc import Callable, Iterable
from datetime import UTC
from types import FrameType
from typing import TYPE_CHECKING, Any

from framework.secrets import mask, remember
from framework.settings import LoggingSettings

if TYPE_CHECKING:
    from loguru import Record

__all__ = ("LogSink", "setup_logging")


_fallback_id = -1


class _InterceptHandler(logging.Handler):
    """Send stdlib logging records to loguru, keeping level and caller."""

    def emit(self, record: logging.LogRecord) -> None:
        from loguru import logger

        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        depth = 2
        frame: FrameType | None = logging.currentframe()
        while frame is not None and frame.f_code.co_filename == logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.bind(logger_name=record.name).opt(depth=depth, exception=record.exc_info).log(
            level, record.getMessage()
        )


def _patch(record: Record) -> None:
    """Every record, before any sink sees it: message, string fields and traceback masked.

    The traceback is rendered here, once per record, into ``extra["_traceback"]`` (masked); our
    formats write that instead of loguru's own rendering. ``record["exception"]`` itself is kept
    for sinks an application adds (error trackers).
    """
    record["message"] = mask(record["message"])
    extra = record["extra"]
    for key, value in extra.items():
        if isinstance(value, str):
            extra[key] = mask(value)
    exc = record["exception"]
    if exc is not None:
        lines = traceback.format_exception(exc.type, exc.value, exc.traceback) if exc.type else ()
        extra["_traceback"] = mask("".join(lines)).rstrip("\n")


_TEXT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[_line]}\n"


def _text(record: Record) -> str:
    """``time | level | logger | message | key=value ...``, then the masked traceback if any."""
    extra = record["extra"]
    fields = " ".join(
        f"{k}={_plain(v)}" for k, v in extra.items() if not k.startswith("_") and k != "logger_name"
    )
    line = f"{extra.get('logger_name') or record['name']} | {record['message']}"
    if fields:
        line = f"{line} | {fields}"
    tb = _traceback(record)
    extra["_line"] = f"{line}\n{tb}" if tb else line
    return _TEXT


def _json(record: Record) -> str:
    """One JSON object per line; ``exception`` holds the masked traceback."""
    out: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(),
        "level": record["level"].name,
        "logger": record["extra"].get("logger_name") or record["name"],
        "message": record["message"],
    }
    for key, value in record["extra"].items():
        if not key.startswith("_") and key != "logger_name":
            out[key] = _plain(value)
    tb = _traceback(record)
    if tb:
        out["exception"] = tb + "\n"
    record["extra"]["_json"] = json.dumps(out, default=str)
    return "{extra[_json]}\n"


def _plain(value: object) -> object:
    """A field as written: strings (masked by `_patch`) and numbers as they are, others masked."""
    return value if isinstance(value, str | int | float | bool | None) else mask(str(value))


def _traceback(record: Record) -> str:
    """The masked traceback `_patch` rendered (rendered now for a record it did not see)."""
    tb: str | None = record["extra"].get("_traceback")
    if tb is None and record["exception"] is not None:
        _patch(record)
        tb = record["extra"].get("_traceback")
    return tb or ""


class LogSink:
    """The handlers `setup_logging` added, and how to flush them."""

    def __init__(self, handler_ids: list[int], previous_root: tuple[list[logging.Handler], int]):
        self.handler_ids = handler_ids
        self._previous_root = previous_root
        self._lock = threading.Lock()
        self._closed = False

    async def flush(self) -> None:
        """Wait for every queued and coroutine sink to finish, then remove the handlers."""
        from loguru import logger

        await logger.complete()
        self.flush_sync()

    def flush_sync(self) -> None:
        """Remove the handlers (drains ``enqueue`` queues and closes files); safe from any thread."""
        from loguru import logger

        with self._lock:
            if self._closed:
                return
            self._closed = True
            for handler_id in self.handler_ids:
                try:
                    logger.remove(handler_id)
                except ValueError:
                    pass  # already removed by the user
            root = logging.getLogger()
            root.handlers[:], level = self._previous_root
            root.setLevel(level)
            _route_stdlib_loggers(logging.NOTSET)
            # keep warnings visible after shutdown, as loguru's default handler would
            global _fallback_id
            if not logger._core.handlers:  # type: ignore[attr-defined]
                _fallback_id = logger.add(
                    sys.stderr, level="WARNING", format=_text, backtrace=False, diagnose=False
                )


def setup_logging(settings: LoggingSettings, secrets: Iterable[str] = ()) -> LogSink:
    """Configure loguru from ``settings``; mask every string in ``secrets`` in every record.

    ``secrets`` are remembered process-wide (`framework.secrets.remember`): the report and CLI
    errors mask them too.
    """
    from loguru import logger

    remember(secrets)
    global _fallback_id
    for default in (0, _fallback_id):  # loguru's default handler, or ours from a previous flush
        try:
            logger.remove(default)
        except ValueError:
            pass
    logger.configure(patcher=_patch)
    fmt: Callable[[Record], str] = _json if settings.format == "json" else _text
    # diagnose=False: tracebacks never show variable values (they could hold secrets)
    common: dict[str, Any] = {
        "level": settings.level,
        "format": fmt,
        "enqueue": settings.enqueue,
        "backtrace": False,
        "diagnose": False,
    }
    ids: list[int] = []
    if settings.stderr:
        ids.append(logger.add(sys.stderr, colorize=False, **common))
    if settings.file is not None:
        settings.file.parent.mkdir(parents=True, exist_ok=True)
        ids.append(
            logger.add(
                settings.file,
                rotation=settings.rotation,
                retention=settings.retention,
                encoding="utf-8",
                **common,
            )
        )
    root = logging.getLogger()
    previous = (list(root.handlers), root.level)
    if settings.stdlib:
        root.handlers[:] = [_InterceptHandler()]
        level = logging.getLevelName(settings.level) if settings.level != "TRACE" else 5
        root.setLevel(level)
        _route_stdlib_loggers(level)
    return LogSink(ids, previous)


ROUTED_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "sqlalchemy")


def _route_stdlib_loggers(level: int) -> None:
    """Give the known stdlib loggers the effective level, so records below it are never built.

    Each gets its own level (not only the root's): ``isEnabledFor`` answers from it at once, and
    uvicorn, which configures these loggers itself when run alone, finds them already set. uvicorn
    decides per connection whether to build access records from ``"uvicorn.access"`` having
    handlers: when its records (INFO) are filtered out anyway, the logger stops propagating, so
    uvicorn formats no client address, path or status for a record that would be dropped.
    """
    for name in ROUTED_LOGGERS:
        lg = logging.getLogger(name)
        lg.handlers.clear()
        lg.setLevel(level)
        lg.propagate = True
    logging.getLogger("uvicorn.access").propagate = level <= logging.INFO
    # SQLAlchemy logs every statement at INFO: it keeps its own WARNING floor (echo lowers it)
    logging.getLogger("sqlalchemy").setLevel(max(level, logging.WARNING))
