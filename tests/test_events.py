"""The event bus and the consumers of events: readiness, the log renderer."""

from __future__ import annotations

import pytest

from framework._engine.events import (
    Bound,
    Event,
    EventBus,
    Outcome,
    ServiceStopFailed,
    ShutdownFinished,
    ShutdownStarted,
    StartupFinished,
)
from framework._engine.readiness import AppState, Readiness
from framework._engine.readiness_events import follow_lifecycle


def test_bus_calls_handlers_in_order_and_survives_a_broken_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Handlers run in subscription order; one that raises is reported and the rest still run."""
    seen: list[str] = []

    def broken(event: Event) -> None:
        raise RuntimeError("boom")

    bus = EventBus(lambda e: seen.append("first"))
    bus.subscribe(broken)
    bus.subscribe(lambda e: seen.append("last"))
    bus.emit(StartupFinished(0.1, True))
    assert seen == ["first", "last"]
    assert "event handler" in capsys.readouterr().err


def test_readiness_follows_the_lifecycle_events() -> None:
    """ready at a successful startup; shutting down (notice set) at ShutdownStarted; then stopped."""
    readiness = Readiness()
    follow = follow_lifecycle(readiness)
    follow(StartupFinished(0.1, False))
    assert readiness.state is AppState.STARTING
    follow(StartupFinished(0.1, True))
    assert readiness.ready
    follow(ShutdownStarted("SIGTERM", delay=5))
    assert readiness.state is AppState.SHUTTING_DOWN and readiness.shutdown.is_set()
    follow(ShutdownFinished(0.2, True))
    assert readiness.state is AppState.STOPPED


def test_failure_wording_is_the_same_in_errors_and_logs() -> None:
    """The error raised and the line logged for a stop that timed out read the same."""
    from framework._engine.errors import ServiceError
    from framework._engine.events import Phase
    from framework._runtime.messages import failure

    bound = Bound(3.0, "services.db.stop_timeout")
    error = ServiceError("db", Phase.STOP, Outcome.TIMED_OUT, bound=bound)
    assert str(error) == failure("db", Phase.STOP, Outcome.TIMED_OUT, bound)
    assert str(error) == "service 'db' did not stop within 3 s (services.db.stop_timeout)"
    from loguru import logger

    from framework._runtime.messages import log_event

    lines: list[str] = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), level="DEBUG")
    try:
        log_event(ServiceStopFailed("db", 3.0, Outcome.TIMED_OUT, bound))
    finally:
        logger.remove(sink)
    assert lines == [f"{error}; shutdown continued"]


def test_per_service_events_are_built_only_when_a_handler_acts_on_them() -> None:
    """`takes` marks what a handler acts on (kinds, or a test asked at each event, as the log
    renderer asks its sinks' level); an unmarked handler (yours) gets every event."""
    from framework._engine.events import ServiceStarted, takes

    built: list[str] = []

    class Counted(ServiceStarted):
        def __init__(self, service: str, duration: float) -> None:
            built.append(service)
            super().__init__(service, duration)

    logging = [False]
    logged: list[Event] = []

    def renderer(event: Event) -> None:
        if logging[0]:
            logged.append(event)

    renderer.takes = lambda kind: logging[0]  # type: ignore[attr-defined]

    @takes(ShutdownStarted)
    def on_shutdown(event: Event) -> None:
        raise AssertionError("not a shutdown")

    bus = EventBus(follow_lifecycle(Readiness()), renderer, on_shutdown)
    bus.emit_new(Counted, "a", 0.1)
    assert built == [] and not bus.wanted(Counted) and bus.wanted(ShutdownStarted)
    logging[0] = True  # the test is asked again at each event
    bus.emit_new(Counted, "b", 0.1)
    logging[0] = False
    mine: list[Event] = []
    bus.subscribe(mine.append)
    bus.emit_new(Counted, "c", 0.1)
    assert built == ["b", "c"] and [len(logged), len(mine)] == [1, 1]
