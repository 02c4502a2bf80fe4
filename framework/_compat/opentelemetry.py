"""OpenTelemetry's parts the telemetry service uses beyond what its documentation names, and why.

- ``opentelemetry.instrumentation.sqlalchemy.engine.EngineTracer``: the class the SQLAlchemy
  instrumentor attaches to an engine, to make a span per statement. The documented way,
  ``SQLAlchemyInstrumentor().instrument(engine=...)``, is skipped without a word when the installed
  SQLAlchemy is outside the range the instrumentation declares (``sqlalchemy < 2.1`` in 0.66b2,
  where the framework's range admits 2.1), and ``instrument()`` without an engine wraps
  ``create_engine`` for the whole process. The tracer is made for each engine the framework owns.
"""

from __future__ import annotations

from typing import Any

from framework._compat import require

__all__ = ("SUPPORTED", "trace_engine")

SUPPORTED = ">=0.66b2,<1"
"""The opentelemetry-instrumentation-sqlalchemy versions this adapter was written and tested for
(``pyproject.toml``'s range)."""

require("opentelemetry-instrumentation-sqlalchemy", SUPPORTED)


def trace_engine(tracer_provider: Any, meter_provider: Any, engine: Any) -> None:
    """A span per statement of ``engine`` (a synchronous `Engine`; an async one's core), and the
    connection-usage counter the instrumentation keeps, from the given providers."""
    from opentelemetry.instrumentation.sqlalchemy import __name__ as scope
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer

    usage = meter_provider.get_meter(scope).create_up_down_counter(
        name="db.client.connections.usage", unit="connections"
    )
    EngineTracer(tracer_provider.get_tracer(scope), engine, usage)  # type: ignore[no-untyped-call]
