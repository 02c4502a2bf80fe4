"""Every message the runner and the engine write, worded once.

The lifecycle events are rendered here (logger ``framework.lifecycle``), and so are the runner's
own lines (logger ``framework.application``), whichever module writes them. The failure wording
("service 'db' did not stop within 3 s (services.db.stop_timeout)") is built by `failure`, which
`framework._engine.errors.ServiceError` uses too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from framework._engine.errors import error_text, failure
from framework._engine.events import (
    Event,
    Outcome,
    Phase,
    RollingBack,
    ServiceCrashed,
    ServiceHealthChanged,
    ServiceRestarted,
    ServiceRestarting,
    ServiceStarted,
    ServiceStartFailed,
    ServiceStarting,
    ServiceStopFailed,
    ServiceStopped,
    ServiceStopping,
    ShutdownFinished,
    ShutdownStarted,
    SpawnedTaskFailed,
    StartupFinished,
)
from framework._engine.secrets import mask, redact
from framework._engine.service import spawned_tasks

if TYPE_CHECKING:
    from loguru import Logger

    from framework._config.load import LoadedSettings
    from framework._engine.graph import DependencyGraph

__all__ = (
    "ABORTED_BEFORE_START",
    "ENGINE_LOGGER",
    "ROLLBACK_OUTLIVED",
    "RUNNER_LOGGER",
    "SHUTDOWN_OUTLIVED",
    "STATUS_FACTS",
    "config_files",
    "crashed",
    "error_text",
    "exiting_now",
    "failure",
    "forced_by",
    "health_false",
    "health_not_bool",
    "health_still_running",
    "health_timed_out",
    "last_line",
    "lines_lost",
    "log_event",
    "log_reopened",
    "log_starting",
    "not_a_service",
    "not_created",
    "not_reopened_since",
    "report_not_written",
    "runner_log",
    "signal_again",
    "signal_during_startup",
    "signal_received",
    "sink_failed",
    "starting",
    "status_line",
)

RUNNER_LOGGER = "framework.application"
"""The logger name of the runner's own lines (signals, startup, timeline, exit)."""
ENGINE_LOGGER = "framework.lifecycle"
"""The logger name of the rendered lifecycle events."""


def runner_log() -> Logger:
    """The loguru logger, named as the runner's lines have always been."""
    from loguru import logger

    return logger.bind(logger_name=RUNNER_LOGGER)


# -- the runner's lines ---------------------------------------------------------------------------


def starting(app: str, services: int, layers: int, env: str | None) -> str:
    return f"starting {app}: {services} service(s) in {layers} layer(s)" + (
        f", env {env}" if env else ""
    )


def log_starting(app: str, graph: DependencyGraph, loaded: LoadedSettings[Any]) -> None:
    """The first lines of a start: the app, its services and layers, the files read, warnings."""
    layers = max(graph.layer.values(), default=-1) + 1
    log = runner_log()
    log.info(starting(app, len(graph), layers, loaded.env))
    log.info(config_files(loaded.files))
    for warning in loaded.warnings:
        log.warning(warning)


def config_files(files: Sequence[Path]) -> str:
    if not files:
        return "configuration: no file read (field defaults, .env, environment and overrides)"
    return "configuration read from " + ", ".join(str(f) for f in files)


def not_created(name: str, error: BaseException) -> str:
    return f"service {name!r} could not be created: {error_text(error)}"


def not_a_service(name: str, provided: object) -> str:
    return (
        f"service {name!r}: its provider returned {type(provided).__name__}, not a "
        "Service; an override must provide a Service too"
    )


ABORTED_BEFORE_START = "startup aborted before any service started"
ROLLBACK_OUTLIVED = "the rollback outlived lifecycle.shutdown_timeout"
SHUTDOWN_OUTLIVED = "the shutdown outlived lifecycle.shutdown_timeout"


def health_timed_out(seconds: float) -> str:
    return f"health() did not answer within {seconds:g} s (lifecycle.health_timeout)"


def health_still_running(seconds: float) -> str:
    return f"health() has still not returned after {seconds:.1f} s (it ignores cancellation)"


_SHOWN_LONGEST = 80  # characters of a value shown in a message


def _shown_value(value: object) -> str:
    """``repr(value)`` safe to print: secrets masked (the one path, `mask`, after `redact`), at
    most `_SHOWN_LONGEST` characters. Masked before it is cut, so no part of a secret is left."""
    try:
        text = repr(redact(value))
    except Exception:  # a __repr__ that fails: the type still says something
        text = f"<{type(value).__name__} object>"
    text = mask(text)
    return text if len(text) <= _SHOWN_LONGEST else f"{text[: _SHOWN_LONGEST - 3]}..."


def health_not_bool(name: str, answer: object) -> str:
    return (
        f"service {name!r}: health() returned {_shown_value(answer)}, not a bool: counted "
        "unhealthy (return True or False)"
    )


def health_false() -> str:
    return "health() returned False"


def crashed(name: str, error: BaseException) -> str:
    return f"service {name!r} crashed: {error_text(error)}"


def signal_received(sig: str) -> str:
    return f"received {sig}: shutting down gracefully"


def signal_during_startup(sig: str) -> str:
    return f"{sig} during startup: aborting and rolling back"


def hand_off_failed(sig: str, error: BaseException) -> str:
    return f"could not hand {sig} to the event loop ({error_text(error)}); exiting without a graceful stop"


def signals_reclaimed(taken: list[str]) -> str:
    return (
        f"another library took over {', '.join(taken)}; taken back (its own handlers still run "
        "on its wakeup fd): the framework handles the shutdown signals"
    )


def signal_again(sig: str) -> str:
    return f"received {sig} again: forcing the shutdown"


def exiting_now(why: str) -> str:
    return f"exiting now ({why}); stops still running were abandoned"


def report_not_written(path: object, error: OSError) -> str:
    return mask(f"cannot write the report to {path}: {error}")


def forced_by(sig: str, count: int) -> str:
    """Why the watchdog forces the exit after the second (or a later) signal."""
    return f"second {sig}" if count == 2 else f"{sig} received {count} times"


def last_line(code: int, why: str) -> str:
    """Written straight to stderr when the logger itself is stuck (a stalled pipe)."""
    return f"{exiting_now(why)}; the log could not be flushed\nexit code {code}\n"


def sink_failed(sink: str, error: BaseException) -> str:
    return (
        f"log sink {sink} failed: {error_text(error)}; its lines are counted as lost "
        "(check the disk or the logging.file setting)"
    )


def lines_lost(sink: str, lines: int, error: BaseException) -> str:
    return f"log sink {sink} lost {lines} line(s): {error_text(error)}"


def log_reopened(results: list[tuple[str, BaseException | None]]) -> str:
    if not results:
        return "received SIGUSR1: no log file to reopen"
    reopened = [name for name, error in results if error is None]
    failed = [f"{name} ({error_text(error)})" for name, error in results if error is not None]
    said = [f"reopened {', '.join(reopened)}"] if reopened else []
    if failed:
        said.append(
            f"could not reopen {', '.join(failed)}: still writing to the file opened before"
        )
    return "received SIGUSR1: " + "; ".join(said)


def not_reopened_since(sink: str, error: BaseException) -> str:
    return (
        f"log file {sink} could not be reopened at the last SIGUSR1 ({error_text(error)}): the "
        "lines since went to the file it had open before (renamed or removed by then)"
    )


STATUS_FACTS = ("in_flight", "checked_out")
"""Read from each service for the status snapshot when it has them (duck-typed, no import)."""


def status_line(name: str, service: object) -> str:
    """One service in the SIGUSR2 status snapshot: its state, requests in flight, connections."""
    facts = [(fact, getattr(service, fact, None)) for fact in STATUS_FACTS]
    extra = "".join(
        f", {fact.replace('_', ' ')} {value}" for fact, value in facts if isinstance(value, int)
    )
    tasks = spawned_tasks(service, create=False)
    if tasks is not None and tasks.running:
        extra += f", spawned tasks running: {', '.join(tasks.names)}"
    return f"status: service {name!r} {getattr(service, 'state', 'unknown')}{extra}"


# -- the lifecycle events -------------------------------------------------------------------------


_PER_SERVICE_LEVEL: dict[type, int] = {
    ServiceStarting: 10,
    ServiceStopping: 10,
    ServiceStarted: 20,
    ServiceStopped: 20,
}
"""The loguru level number each per-service event is logged at (DEBUG, INFO)."""


def log_event(event: Event) -> None:
    """Render a lifecycle event as a structured log record."""
    from loguru import logger

    # one event per service and phase: skipped before any record is built when no sink wants it
    if not _logs_kind(type(event)):
        return
    log = logger.bind(logger_name=ENGINE_LOGGER, event=type(event).__name__)
    match event:
        case ServiceStarting(service=name):
            log.bind(service=name, phase="start").debug(f"starting service {name!r}")
        case ServiceStarted(service=name, duration=d):
            log.bind(service=name, phase="start", outcome="ok", duration=round(d, 6)).info(
                f"service {name!r} started in {d:.3f} s"
            )
        case ServiceStartFailed() | ServiceStopFailed():
            _log_failure(log, event)
        case ServiceStopping(service=name):
            log.bind(service=name, phase="stop").debug(f"stopping service {name!r}")
        case ServiceStopped(service=name, duration=d):
            log.bind(service=name, phase="stop", outcome="ok", duration=round(d, 6)).info(
                f"service {name!r} stopped in {d:.3f} s"
            )
        case ServiceCrashed() | ServiceRestarting() | ServiceRestarted() | SpawnedTaskFailed():
            _log_run(log, event)
        case ServiceHealthChanged(service=name, healthy=True):
            log.bind(service=name, healthy=True).info(f"service {name!r} is healthy again")
        case ServiceHealthChanged(service=name, reason=why):
            log.bind(service=name, healthy=False).warning(
                f"service {name!r} is unhealthy: {why}; /readyz answers 503"
            )
        case RollingBack(reason=r, services=names, raised=raised):
            # a failed start's cause is on its own line just before: name the service only
            r = f"service {raised!r} failed to start" if raised is not None else r
            log.warning(f"startup aborted ({r}); stopping {len(names)} service(s) that began")
        case StartupFinished(duration=d, ok=True):
            log.bind(duration=round(d, 6)).info(f"startup complete in {d:.3f} s")
        case StartupFinished(duration=d, ok=False):
            log.bind(duration=round(d, 6)).error(f"startup failed after {d:.3f} s")
        case ShutdownStarted(reason=r, delay=delay):
            log.info(f"shutting down: {r}")
            if delay > 0:
                runner_log().info(f"shutting down ({r}): not ready; serving for {delay:g} s more")
        case ShutdownFinished(duration=d, ok=ok):
            log.bind(duration=round(d, 6)).log(
                "INFO" if ok else "ERROR",
                f"shutdown {'complete' if ok else 'finished with errors'} in {d:.3f} s",
            )


def _log_run(log: Logger, event: Event) -> None:
    """The events of ``run()`` bodies and spawned tasks: a crash, a restart, a failed task."""
    match event:
        case ServiceCrashed(service=name, error=e):
            log.bind(service=name, phase="run", outcome="failed").opt(exception=e).error(
                f"service {name!r} crashed in run(): {error_text(e)}; shutting down"
            )
        case ServiceRestarting(service=name, attempt=n, backoff=b, error=e):
            log.bind(service=name, phase="run", outcome="restarting", restart=n).opt(
                exception=e
            ).warning(f"service {name!r} failed: {error_text(e)}; restart {n} in {b:g} s")
        case ServiceRestarted(service=name, attempt=n):
            log.bind(service=name, phase="start", outcome="ok", restart=n).info(
                f"service {name!r} restarted (restart {n}); run() resumed"
            )
        case SpawnedTaskFailed(service=name, task=task, error=e):
            log.bind(service=name, task=task, outcome="failed").opt(exception=e).error(
                f"service {name!r}: spawned task {task!r} failed: {error_text(e)}; the "
                "application goes on"
            )


def _logs_kind(kind: type) -> bool:
    """Whether `log_event` would log an event of ``kind`` (asked at each event: sinks change)."""
    if not _MIN_LEVEL:
        from framework._compat.loguru import min_level

        _MIN_LEVEL.append(min_level)
    return _PER_SERVICE_LEVEL.get(kind, 100) >= _MIN_LEVEL[0]()


_MIN_LEVEL: list[Callable[[], float]] = []  # the lowest level any sink takes, asked of loguru


log_event.takes = _logs_kind  # type: ignore[attr-defined]


def _log_failure(log: Logger, event: ServiceStartFailed | ServiceStopFailed) -> None:
    name, d, bound, error = event.service, event.duration, event.bound, event.error
    stop = isinstance(event, ServiceStopFailed)
    phase, after = (Phase.STOP, "; shutdown continued") if stop else (Phase.START, "")
    log = log.bind(service=name, phase=phase.value, outcome=event.outcome.value)
    log = log.bind(duration=round(d, 6))
    if event.outcome is Outcome.CANCELLED:
        forced = " (forced shutdown)" if stop else ""
        log.warning(f"service {name!r}: {phase.value} cancelled after {d:.3f} s{forced}")
        return
    text = failure(name, phase, event.outcome, bound, error) + after
    if event.outcome is Outcome.TIMED_OUT or getattr(error, "explained", False):
        log.error(text)  # the text says it all (a timeout, an error that explains itself)
    else:
        log.opt(exception=error).error(text)
