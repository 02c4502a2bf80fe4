"""Prometheus metrics of one HTTP service: requests, and the application's lifecycle figures."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from framework._engine.readiness import AppState
from framework._runtime.health import health_metrics

if TYPE_CHECKING:
    from prometheus_client.metrics_core import Metric

    from framework.services._http._front import Scope
    from framework.services._http._service import HttpService

__all__ = ("Metrics",)

_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)


class Metrics:
    """Request metrics and lifecycle figures in a registry private to one service."""

    def __init__(self, service: HttpService) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        self.in_flight = Gauge(
            "http_requests_in_flight", "HTTP requests being handled.", registry=self.registry
        )
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method and status.",
            ["method", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by method.",
            ["method"],
            registry=self.registry,
        )
        self.registry.register(_LifecycleCollector(service))

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        method = str(scope.get("method", ""))
        method = method if method in _METHODS else "other"  # bounded label values
        self.in_flight.dec()
        self.requests.labels(method, str(status)).inc()
        self.duration.labels(method).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _LifecycleCollector:
    """The application's state and each service's start and stop time, read at each scrape."""

    def __init__(self, service: HttpService) -> None:
        self.service = service

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        context = self.service._context
        state, start, stop = self._families()
        current = self.service.status
        for value in AppState:
            state.add_metric([value.value], 1.0 if value is current else 0.0)
        yield state
        if context is None:
            return
        for name, view in context.services().items():
            if view.start_seconds is not None:
                start.add_metric([name], view.start_seconds)
            if view.stop_seconds is not None:
                stop.add_metric([name], view.stop_seconds)
        yield start
        yield stop
        yield from health_metrics(context.readiness.unhealthy, context.services())

    @staticmethod
    def _families() -> tuple[Any, Any, Any]:
        from prometheus_client.core import GaugeMetricFamily

        return (
            GaugeMetricFamily(
                "framework_app_state",
                "The application's state: 1 for the current one.",
                labels=["state"],
            ),
            GaugeMetricFamily(
                "framework_service_start_seconds",
                "How long each service's start() took.",
                labels=["service"],
            ),
            GaugeMetricFamily(
                "framework_service_stop_seconds",
                "How long each service's stop() took.",
                labels=["service"],
            ),
        )
