"""Logging setup: loguru, with stdlib logging routed into it; set up first, flushed last.

The application calls `setup_logging` before the first service starts and `LogSink.flush` after
the last one stops, on every exit path: ``await logger.complete()`` then ``logger.remove()``, so
coroutine sinks and ``enqueue=True`` queues are drained. A forced exit from a watchdog thread uses
`LogSink.flush_sync`.

Every sink is guarded (`GuardedSink`): a write that fails (a full disk, ``/dev/full``, a closed
pipe) never raises into the code that logged and never prints loguru's "Logging error" block; the
first failure of a sink is reported once on stderr (one line naming the sink and the error), the
lines it lost are counted (`LogSink.losses`), and the runner states them before its final line.
`LogSink.reopen` reopens the log file (SIGUSR1, for logrotate).

How lifecycle events become log lines is `framework._runtime.messages`; this module only sets up the sinks.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC
from types import FrameType
from typing import TYPE_CHECKING, Any

from framework._config.settings import LoggingSettings
from framework._engine.secrets import mask, remember

if TYPE_CHECKING:
    from loguru import Logger, Record

__all__ = (
    "GuardedSink",
    "LogSink",
    "Loss",
    "log_span_ids",
    "restore_fallback",
    "setup_logging",
    "silence",
)


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
        exc_info = record.exc_info
        message = record.getMessage()
        if exc_info and exc_info[1] is not None and not isinstance(exc_info[1], Exception):
            # a cancellation (the stop bound, a startup aborted by a signal) that a library logs
            # on its way out, e.g. SQLAlchemy closing a connection whose checkout was cancelled:
            # one line, not a traceback of the framework's own cancellation
            message, exc_info, level = f"{message} ({type(exc_info[1]).__name__})", None, "WARNING"
        logger.bind(logger_name=record.name).opt(depth=depth, exception=exc_info).log(
            level, message
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
    if _span_ids is not None and (ids := _span_ids()) is not None:
        extra["trace_id"], extra["span_id"] = ids
    exc = record["exception"]
    if exc is not None:
        lines = traceback.format_exception(exc.type, exc.value, exc.traceback) if exc.type else ()
        extra["_traceback"] = mask("".join(lines)).rstrip("\n")


_span_ids: Callable[[], tuple[str, str] | None] | None = None


def log_span_ids(source: Callable[[], tuple[str, str] | None] | None) -> None:
    """Have every record written inside a span carry ``trace_id`` and ``span_id`` (hex), as
    ``source`` tells them for the current context (None outside a span); None: no more."""
    global _span_ids
    _span_ids = source


_TEXT = "{time:YYYY-MM-DD HH:mm:ss.SSS} | {level: <8} | {extra[_line]}\n"


_LAYERS = frozenset({"_engine", "_config", "_runtime", "_process", "_cli", "_compat"})


@functools.lru_cache(maxsize=256)
def logger_name(module: str | None) -> str:
    """The name a log line shows for ``module``: the framework's own modules without their private
    layer package (``framework._runtime.systemd`` shows as ``framework.systemd``, and
    ``framework.services._database`` as ``framework.services.database``); others as they are."""
    if not module or not module.startswith("framework."):
        return module or ""
    parts = [p.lstrip("_") for p in module.split(".") if p not in _LAYERS]
    return ".".join(parts)


def _text(record: Record) -> str:
    """``time | level | logger | message | key=value ...``, then the masked traceback if any."""
    extra = record["extra"]
    fields = " ".join(
        f"{k}={_plain(v)}" for k, v in extra.items() if not k.startswith("_") and k != "logger_name"
    )
    line = f"{extra.get('logger_name') or logger_name(record['name'])} | {record['message']}"
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
        "logger": record["extra"].get("logger_name") or logger_name(record["name"]),
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


@dataclass(frozen=True)
class Loss:
    """What one sink lost: its name, how many lines, and the first error."""

    sink: str
    lines: int
    error: BaseException


class GuardedSink:
    """A loguru sink that never raises: failures are reported once, then counted.

    ``opener`` makes the real sink (a stream, or loguru's file sink for a path); `reopen` makes a
    new one and swaps it in (the old one is closed after, so no line is lost).
    """

    def __init__(self, name: str, opener: Callable[[], Any], *, report: bool = True) -> None:
        self.name = name
        self._opener = opener
        self._sink = opener()
        self._report = report
        self._swap = threading.Lock()
        self.lost = 0
        self.error: BaseException | None = None
        self.reopen_error: BaseException | None = None
        """Why the last `reopen` failed (the lines since went to the file opened before)."""

    def write(self, message: str) -> None:
        try:
            with self._swap:
                sink = self._sink
                sink.write(message)
                flush = getattr(sink, "flush", None)
                if callable(flush):
                    flush()
        except (OSError, ValueError) as exc:  # a full disk, a closed file or pipe
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.lost += 1
        if self.error is not None:
            return
        self.error = exc
        if self._report:
            from framework._runtime.messages import sink_failed

            try:
                sys.__stderr__.write(sink_failed(self.name, exc) + "\n")  # type: ignore[union-attr]
                sys.__stderr__.flush()  # type: ignore[union-attr]
            except (OSError, ValueError, AttributeError):
                pass  # stderr is gone too: the count still tells

    def reopen(self) -> BaseException | None:
        """A new sink from the opener (the file at the same path, created anew), then the old
        one closed: None. An open that fails keeps the old sink: the error (`reopen_error`)."""
        try:
            new = self._opener()
        except (OSError, ValueError) as exc:
            self.reopen_error = exc
            return exc
        self.reopen_error = None
        with self._swap:
            old, self._sink = self._sink, new
        self._stop(old)
        return None

    def stop(self) -> None:
        """Close the real sink (called by loguru when the handler is removed)."""
        self._stop(self._sink)

    def _stop(self, sink: Any) -> None:
        stop = getattr(sink, "stop", None)
        if callable(stop):
            try:
                stop()
            except (OSError, ValueError) as exc:  # the last buffered lines could not be written
                self._failed(exc)


class LogSink:
    """The handlers `setup_logging` added, and how to flush them."""

    def __init__(
        self,
        handler_ids: list[int],
        previous_root: tuple[list[logging.Handler], int],
        sinks: Iterable[GuardedSink] = (),
    ):
        self.handler_ids = handler_ids
        self.sinks = tuple(sinks)
        self._previous_root = previous_root
        self._lock = threading.Lock()
        self._closed = False

    def losses(self) -> list[Loss]:
        """The sinks that failed: how many lines each lost, and why."""
        return [Loss(s.name, s.lost, s.error) for s in self.sinks if s.error is not None]

    def report_losses(self, log: Logger) -> bool:
        """Log one warning per sink that lost lines or could not be reopened (before the final
        line); True if any did."""
        from framework._runtime.messages import lines_lost, not_reopened_since

        losses = self.losses()
        for loss in losses:
            log.warning(lines_lost(loss.sink, loss.lines, loss.error))
        stale = [s for s in self.sinks if s.reopen_error is not None]
        for sink in stale:
            assert sink.reopen_error is not None
            log.warning(not_reopened_since(sink.name, sink.reopen_error))
        return bool(losses or stale)

    def reopen(self) -> list[tuple[str, BaseException | None]]:
        """Reopen every file sink (logrotate renamed the file): each one's name, and why it could
        not be reopened (None when it was)."""
        return [(s.name, s.reopen()) for s in self.sinks if s.name != "stderr"]

    async def flush(self, *, fallback: bool = True) -> None:
        """Wait for every queued and coroutine sink to finish, then remove the handlers."""
        from loguru import logger

        await logger.complete()
        self.flush_sync(fallback=fallback)

    def flush_sync(self, *, fallback: bool = True) -> None:
        """Remove the handlers (drains ``enqueue`` queues and closes files); safe from any thread.

        ``fallback``: afterwards warnings go to stderr, as loguru's default handler would send them;
        without it (the final line was written) nothing more is printed.
        """
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
            if fallback:
                restore_fallback()
            elif not root.handlers:  # nor the standard library's last resort (a pool's warning)
                root.addHandler(_QUIET)


class _Quiet(logging.NullHandler):
    """Between the final line and the end of ``run()``: stdlib records go nowhere."""


_QUIET = _Quiet()


def restore_fallback() -> None:
    """Keep warnings visible after shutdown, as loguru's default handler would."""
    from loguru import logger

    from framework._compat.loguru import has_handlers

    global _fallback_id
    logging.getLogger().removeHandler(_QUIET)
    if not has_handlers():
        _fallback_id = logger.add(
            sys.stderr, level="WARNING", format=_text, backtrace=False, diagnose=False
        )


def _ignore(*args: object) -> None:
    """Drops what it is given."""


def silence() -> None:
    """The final line is written: drop whatever would still be printed (a warning of the loop's
    teardown, an exception ignored at interpreter exit), so that line stays the last one."""
    from loguru import logger

    global _fallback_id
    try:
        logger.remove(_fallback_id)
    except ValueError:
        pass
    logging.lastResort = None
    logging.getLogger().handlers[:] = [logging.NullHandler()]
    sys.unraisablehook = _ignore
    threading.excepthook = _ignore
    warnings.simplefilter("ignore")


def setup_logging(settings: LoggingSettings, secrets: Iterable[str] = ()) -> LogSink:
    """Configure loguru from ``settings``; mask every string in ``secrets`` in every record.

    ``secrets`` are remembered process-wide (`framework._engine.secrets.remember`): the report and CLI
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
    sinks = _sinks(settings)
    ids = [logger.add(sink, colorize=False, **common) for sink in sinks]
    root = logging.getLogger()
    previous = (list(root.handlers), root.level)
    if settings.stdlib:
        root.handlers[:] = [_InterceptHandler()]
        level = logging.getLevelName(settings.level) if settings.level != "TRACE" else 5
        root.setLevel(level)
        _route_stdlib_loggers(level)
    return LogSink(ids, previous, sinks)


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


def _sinks(settings: LoggingSettings) -> list[GuardedSink]:
    """The guarded sinks of ``settings``: stderr, then the file (rotation and retention kept)."""
    sinks: list[GuardedSink] = []
    if settings.stderr:
        stream = sys.stderr
        sinks.append(GuardedSink("stderr", lambda: stream, report=False))
    file = settings.file
    if file is not None:
        from framework._compat.loguru import file_sink

        file.parent.mkdir(parents=True, exist_ok=True)

        def open_file() -> Any:
            return file_sink(
                file, rotation=settings.rotation, retention=settings.retention, encoding="utf-8"
            )

        sinks.append(GuardedSink(str(file), open_file))
    return sinks
