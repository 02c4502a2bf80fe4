"""What the exporters send, passed through the secret masking of the logs first.

`MaskingExporter` wraps an OpenTelemetry ``SpanExporter``: each span is copied with its name,
attributes, events (a recorded exception is an event with its message and stack trace), links,
status text and resource attributes passed through `framework._engine.secrets.mask`. A span with
nothing to mask is sent as it is. Failed exports are counted and reported through a callback.

`MaskingMetricExporter` is the OTLP/HTTP metric exporter whose ``export`` sends `masked_metrics`:
resource attributes, metric names and descriptions, and the attributes of every data point and
exemplar masked the same way. `masked_resource` is what ``TelemetryService.start()`` gives both
providers (attributes from ``OTEL_RESOURCE_ATTRIBUTES`` included).
Imported by `TelemetryService.start()`, when OpenTelemetry is known to be installed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk.metrics.export import Metric, MetricExportResult, MetricsData
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from framework._engine.secrets import mask

__all__ = (
    "MaskingExporter",
    "MaskingMetricExporter",
    "masked_attributes",
    "masked_metrics",
    "masked_resource",
    "masked_span",
)


def _masked_value(value: Any) -> Any:
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, tuple | list) and any(isinstance(v, str) for v in value):
        return type(value)(mask(v) if isinstance(v, str) else v for v in value)
    return value


def masked_attributes(attributes: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """``attributes`` with every string (and string in a sequence) masked; None stays None."""
    if attributes is None:
        return None
    return {mask(key): _masked_value(value) for key, value in attributes.items()}


def _same(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> bool:
    return before is None or dict(before) == after


def masked_resource(resource: Resource) -> Resource:
    """``resource`` with its attributes masked: itself when nothing changed."""
    attrs = masked_attributes(resource.attributes) or {}
    return resource if _same(resource.attributes, attrs) else Resource(attrs, resource.schema_url)


def masked_span(span: ReadableSpan, resources: dict[int, Resource]) -> ReadableSpan:
    """``span`` (a ``ReadableSpan``) with its texts masked: itself when nothing changed.

    ``resources`` caches the masked copy of each resource (one per provider) by identity.
    """
    resource = span.resource
    masked = resources.get(id(resource))
    if masked is None:
        masked = resources[id(resource)] = masked_resource(resource)
    name = mask(span.name)
    attributes = masked_attributes(span.attributes)
    events = [
        Event(mask(e.name), masked_attributes(e.attributes), e.timestamp) for e in span.events
    ]
    links = [Link(link.context, masked_attributes(link.attributes)) for link in span.links]
    status = span.status
    if status.description:
        status = Status(status.status_code, mask(status.description))
    unchanged = (
        masked is resource
        and name == span.name
        and _same(span.attributes, attributes)
        and all(
            e.name == m.name and _same(e.attributes, m.attributes)
            for e, m in zip(span.events, events, strict=True)
        )
        and all(_same(k.attributes, m.attributes) for k, m in zip(span.links, links, strict=True))
        and status is span.status
    )
    if unchanged:
        return span
    return ReadableSpan(
        name=name,
        context=span.context,
        parent=span.parent,
        resource=masked,
        attributes=attributes,
        events=events,
        links=links,
        kind=span.kind,
        status=status,
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class MaskingExporter(SpanExporter):
    """A ``SpanExporter`` that masks every span, then hands the batch to ``inner``.

    ``on_failure(spans, reason)`` is called for each batch ``inner`` could not export (it failed,
    or raised); ``exported`` and ``failed`` count spans.
    """

    def __init__(self, inner: SpanExporter, on_failure: Callable[[int, str], None]) -> None:
        self.inner = inner
        self.on_failure = on_failure
        self.exported = 0
        self.failed = 0
        self._resources: dict[int, Resource] = {}

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result: SpanExportResult = self.inner.export(
                [masked_span(s, self._resources) for s in spans]
            )
        except Exception as exc:
            reason = mask(f"{type(exc).__name__}: {exc}")
            result = SpanExportResult.FAILURE
        else:
            reason = "the endpoint refused them or did not answer in time"
        if result is SpanExportResult.SUCCESS:
            self.exported += len(spans)
        else:
            self.failed += len(spans)
            self.on_failure(len(spans), reason)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return bool(self.inner.force_flush(timeout_millis))


def _masked_point(point: Any) -> Any:
    exemplars = getattr(point, "exemplars", None)
    if exemplars:
        exemplars = [
            replace(e, filtered_attributes=masked_attributes(e.filtered_attributes))
            for e in exemplars
        ]
        return replace(point, attributes=masked_attributes(point.attributes), exemplars=exemplars)
    return replace(point, attributes=masked_attributes(point.attributes))


def _masked_metric(metric: Metric) -> Metric:
    points: Any = [_masked_point(p) for p in metric.data.data_points]
    data = replace(metric.data, data_points=points)
    description = mask(metric.description) if metric.description else metric.description
    return replace(metric, name=mask(metric.name), description=description, data=data)


def masked_metrics(data: MetricsData) -> MetricsData:
    """``data`` with its resource attributes, metric names and descriptions, and the attributes
    of every data point and exemplar masked (a copy; ``data`` is left as it is)."""
    return replace(
        data,
        resource_metrics=[
            replace(
                rm,
                resource=masked_resource(rm.resource),
                scope_metrics=[
                    replace(sm, metrics=[_masked_metric(m) for m in sm.metrics])
                    for sm in rm.scope_metrics
                ],
            )
            for rm in data.resource_metrics
        ],
    )


class MaskingMetricExporter(OTLPMetricExporter):
    """The OTLP/HTTP metric exporter, sending `masked_metrics` of what it is given."""

    def export(
        self, metrics_data: MetricsData, timeout_millis: float | None = 10_000, **kwargs: Any
    ) -> MetricExportResult:
        result: MetricExportResult = super().export(
            masked_metrics(metrics_data), timeout_millis, **kwargs
        )
        return result
