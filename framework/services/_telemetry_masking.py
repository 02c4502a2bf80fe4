"""What a span exporter sends, passed through the secret masking of the logs first.

`MaskingExporter` wraps an OpenTelemetry ``SpanExporter``: each span is copied with its name,
attributes, events (a recorded exception is an event with its message and stack trace), links,
status text and resource attributes passed through `framework._engine.secrets.mask`. A span with
nothing to mask is sent as it is. Failed exports are counted and reported through a callback.
Imported by `TelemetryService.start()`, when OpenTelemetry is known to be installed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import Link, Status

from framework._engine.secrets import mask

__all__ = ("MaskingExporter", "masked_attributes", "masked_span")


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


def masked_span(span: ReadableSpan, resources: dict[int, Resource]) -> ReadableSpan:
    """``span`` (a ``ReadableSpan``) with its texts masked: itself when nothing changed.

    ``resources`` caches the masked copy of each resource (one per provider) by identity.
    """
    resource = span.resource
    masked_resource = resources.get(id(resource))
    if masked_resource is None:
        attrs = masked_attributes(resource.attributes) or {}
        masked_resource = resource if _same(resource.attributes, attrs) else None
        if masked_resource is None:
            masked_resource = Resource(attrs, resource.schema_url)
        resources[id(resource)] = masked_resource
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
        masked_resource is resource
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
        resource=masked_resource,
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
