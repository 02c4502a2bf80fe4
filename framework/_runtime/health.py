"""The health poller: each service's ``health()``, called while the application runs.

A service may define ``async def health(self) -> bool``. Every ``lifecycle.health_interval``
seconds the poller calls each one (concurrently, each in a task of its own), bounded by
``lifecycle.health_timeout``: a timeout, an exception, ``False`` or anything but a ``bool`` (logged
once) counts as unhealthy. A check that has not returned by its bound counts unhealthy even if it
ignores cancellation (a shielded scope, a thread): the round does not wait for it, it is not
started again while it runs (each round it is still unhealthy), and the other services' checks go
on as usual. The latest result of each is cached
(`HealthPoller.results`); a change emits `ServiceHealthChanged` on the application's event bus,
which readiness follows (``/readyz`` 503 while any service is unhealthy) and the log renders.

A service that is not ``started`` (restarting, stopping) is not checked; its cached result stays.
Backend-neutral (anyio): runs on asyncio and trio. A ``health()`` that blocks the event loop in
synchronous code cannot be bounded: keep checks asynchronous.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import anyio

from framework._config.settings import LifecycleSettings
from framework._engine.detached import DetachedTasks
from framework._engine.events import (
    Event,
    EventBus,
    ServiceHealthChanged,
    ShutdownFinished,
    ShutdownStarted,
    takes,
)
from framework._engine.records import ServiceRecord
from framework._engine.secrets import redact
from framework._engine.service import Service, ServiceState
from framework._runtime.messages import (
    error_text,
    health_false,
    health_not_bool,
    health_still_running,
    health_timed_out,
    runner_log,
)

if TYPE_CHECKING:
    from framework._engine.readiness import Unhealthy
    from framework._runtime.context import ServiceView

__all__ = ("HealthPoller", "HealthResult", "health_checks", "health_metrics")

HealthCheck = Callable[[], Awaitable[bool]]


class _Spawner(Protocol):
    """An anyio task group, or `framework._engine.detached.DetachedTasks`: anything with ``start_soon``."""

    def start_soon(
        self, func: Callable[..., Coroutine[Any, Any, Any]], *args: Any, name: object = None
    ) -> None: ...


@dataclass(frozen=True)
class HealthResult:
    """The latest check of one service: healthy or not, why not, when (the loop's clock)."""

    healthy: bool
    reason: str = ""
    checked_at: float | None = None


def health_checks(services: Mapping[str, Service]) -> dict[str, HealthCheck]:
    """The services that define ``health()``, and that method."""
    found = {name: getattr(service, "health", None) for name, service in services.items()}
    return {name: check for name, check in found.items() if callable(check)}


class HealthPoller:
    """Calls every ``health()`` each ``interval`` seconds, each bounded by ``timeout``.

    ``start(spawner)`` begins polling in a task of ``spawner`` (a task group or anything with its
    ``start_soon``); ``stop()`` ends it, cancelling the checks in flight. The runner uses
    `polling`, which stops by itself at the first moment of shutdown. The first round runs
    one interval after ``start``: every service has just started.
    """

    def __init__(
        self, services: Mapping[str, Service], bus: EventBus, *, interval: float, timeout: float
    ) -> None:
        self.services = services
        self.checks = health_checks(services)
        self.bus = bus
        self.interval = interval
        self.timeout = timeout
        self.results: dict[str, HealthResult] = {name: HealthResult(True) for name in self.checks}
        self.rounds = 0
        self._in_flight: dict[str, tuple[float, anyio.CancelScope]] = {}  # began, its scope
        self._not_bool: set[str] = set()  # services already logged for a non-bool answer
        self._tasks = DetachedTasks()
        self._scope: anyio.CancelScope | None = None
        self._stopped = False

    @classmethod
    def polling(
        cls, records: Iterable[ServiceRecord], bus: EventBus, settings: LifecycleSettings
    ) -> HealthPoller:
        """A poller of the started services, polling from now on in a task of its own until the
        shutdown begins (`ShutdownStarted` on ``bus``)."""
        services = {rec.name: rec.service for rec in records}
        poller = cls(
            services, bus, interval=settings.health_interval, timeout=settings.health_timeout
        )
        bus.subscribe(poller._on_event)
        poller.start(DetachedTasks())
        return poller

    @takes(ShutdownStarted, ShutdownFinished)
    def _on_event(self, event: Event) -> None:
        if isinstance(event, ShutdownStarted | ShutdownFinished):
            self.stop()

    def start(self, spawner: _Spawner) -> None:
        if self.checks and not self._stopped:
            self._scope = anyio.CancelScope()
            spawner.start_soon(self._poll, name="health checks")

    def stop(self) -> None:
        self._stopped = True
        if self._scope is not None:
            self._scope.cancel()

    @property
    def unhealthy(self) -> dict[str, HealthResult]:
        return {name: r for name, r in self.results.items() if not r.healthy}

    async def _poll(self) -> None:
        assert self._scope is not None
        with self._scope:
            while not self._stopped:  # ends with the application (stop() cancels it)
                await anyio.sleep(self.interval)
                await self.check_all()

    async def check_all(self) -> None:
        """One round: every started service's ``health()``, each in a task of its own; returns
        once each has answered or its bound has passed (never later); changes emitted."""
        self.rounds += 1
        began = anyio.current_time()
        done: dict[str, anyio.Event] = {}
        for name, check in self.checks.items():
            if self.services[name].state is not ServiceState.STARTED:
                continue
            if name in self._in_flight:  # the last check has still not returned: not again
                since = began - self._in_flight[name][0]
                self._record(name, False, health_still_running(since))
                continue
            done[name] = anyio.Event()
            self._in_flight[name] = (began, anyio.CancelScope())
            self._tasks.start_soon(self._check_one, name, check, done[name], name=f"health {name}")
        with anyio.move_on_after(self.timeout):
            for event in done.values():
                await event.wait()
        for name, event in done.items():
            if not event.is_set():  # asked to stop; one that ignores it runs on, unhealthy
                self._record(name, False, health_timed_out(self.timeout))
                self._in_flight[name][1].cancel()

    async def _check_one(self, name: str, check: HealthCheck, done: anyio.Event) -> None:
        """One check, in its own task; its answer counts only if it came within the bound."""
        try:
            with self._in_flight[name][1]:
                healthy, reason = await self._ask(name, check)
                if not done.is_set():
                    self._record(name, healthy, reason)
        finally:
            del self._in_flight[name]
            done.set()

    async def _ask(self, name: str, check: HealthCheck) -> tuple[bool, str]:
        try:
            answer = await check()
        except Exception as exc:
            return False, f"health() raised {redact(error_text(exc))}"
        if answer is True:
            return True, ""
        if answer is False:
            return False, health_false()
        if name not in self._not_bool:
            self._not_bool.add(name)
            runner_log().warning(health_not_bool(name, answer))
        return False, health_not_bool(name, answer)

    def _record(self, name: str, healthy: bool, reason: str) -> None:
        if self.services[name].state is not ServiceState.STARTED:
            return  # it began restarting or stopping meanwhile: this answer says nothing
        previous = self.results.get(name)
        self.results[name] = HealthResult(healthy, reason, anyio.current_time())
        if previous is None or previous.healthy != healthy:
            self.bus.emit(ServiceHealthChanged(name, healthy, reason))


def health_metrics(
    unhealthy: Mapping[str, Unhealthy], services: Mapping[str, ServiceView]
) -> Iterator[Any]:
    """Prometheus families for the HTTP service's metrics: each service's health (1 healthy, 0
    while its latest check failed or it restarts) and how many times its ``run()`` restarted."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

    healthy = GaugeMetricFamily(
        "framework_service_healthy",
        "1 while the service counts as healthy; 0 while its latest health check failed or it "
        "is restarting.",
        labels=["service"],
    )
    restarts = CounterMetricFamily(
        "framework_service_restarts",
        "How many times the service's run() was restarted by its restart policy.",
        labels=["service"],
    )
    for name, view in services.items():
        healthy.add_metric([name], 0.0 if name in unhealthy else 1.0)
        restarts.add_metric([name], float(view.restarts))
    yield healthy
    yield restarts
