"""`TelemetryService`: OpenTelemetry traces and metrics, exported over OTLP/HTTP, flushed in order.

``start()`` builds a tracer provider and a meter provider (service name, sampling ratio) whose
exporters send to ``telemetry.endpoint``; from then on every ``HttpService`` that starts wraps its
app in OpenTelemetry's ASGI middleware (a server span per request) and every ``DatabaseService``
traces its engine (a span per statement; `framework.services._instruments`). Those services depend
on this one (discovery adds the edges), so they have stopped, drained, before ``stop()`` runs.

``stop()`` flushes then shuts the providers down in a thread of its own, waited for within the
service's stop bound (less a small reserve): an endpoint that refuses or never answers costs at
most that bound and one warning line, and the thread is a daemon, abandoned at the deadline, so it
never keeps the process alive. The SDK's own exit hooks are off (``shutdown_on_exit=False``).

What is exported passes through the secret masking of the logs (`framework._engine.secrets.mask`):
span names, attributes, events (recorded exceptions too), status texts and resource attributes;
metric names, descriptions and data-point attributes.
OpenTelemetry is imported when the service starts, never with this module.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import anyio

from framework._config.settings import TelemetrySettings
from framework._config.timeouts import service_bounds
from framework._engine.errors import FrameworkError
from framework._engine.service import Service
from framework._runtime.logs import log_span_ids
from framework.services import _instruments

if TYPE_CHECKING:
    from loguru import Logger

    from framework._runtime.context import ServiceContext
    from framework.services._telemetry_masking import MaskingExporter

__all__ = (
    "TelemetryService",
    "TelemetrySettings",
    "in_daemon_thread",
    "require",
    "stop_bound",
    "within",
)

_RESERVE = 0.1  # share of the stop bound kept back to log the outcome before the bound expires
_MAX_EXPORT_TIMEOUT = 10.0  # the SDK's own default for one export request
_globals_set = False
_NEEDED = (
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.instrumentation.asgi",
    "opentelemetry.instrumentation.sqlalchemy",
)


def require(extra: str, module: str) -> None:
    """Raise a `FrameworkError` naming the extra to install when ``module`` cannot be imported."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError as exc:
        raise FrameworkError(
            f"{module} is not installed ({exc}); install it with: pip install 'framework[{extra}]'"
        ) from None


def supported() -> None:
    """Raise a `FrameworkError` (the one line) when an OpenTelemetry package the framework reaches
    into is outside the range its adapter was written for."""
    from framework._compat import UnsupportedDependency

    try:
        import framework._compat.opentelemetry  # noqa: F401  (checks the range when imported)
    except UnsupportedDependency as exc:
        raise FrameworkError(str(exc)) from None


class TelemetryService(Service):
    """OpenTelemetry tracer and meter providers with OTLP/HTTP exporters (extra ``otel``).

    ``tracer_provider`` and ``meter_provider`` are available once ``start()`` returned; they are
    also installed as OpenTelemetry's global providers (the first telemetry service of the process
    does that), so ``opentelemetry.trace.get_tracer(__name__)`` in the app's code records spans.
    """

    _framework_precedes: ClassVar[frozenset[str]] = frozenset(
        {
            "framework.services._http._service.HttpService",
            "framework.services._database.DatabaseService",
        }
    )

    def __init__(self, settings: TelemetrySettings | None = None) -> None:
        for module in _NEEDED:  # a missing extra fails the build of the app, before any start
            require("otel", module)
        supported()
        self.settings = settings if settings is not None else TelemetrySettings()
        self.name = "telemetry"
        self.tracer_provider: Any = None
        self.meter_provider: Any = None
        self._exporter: MaskingExporter | None = None
        self._app_name = "Application"
        self._bound = 10.0
        self._bound_source = "lifecycle.stop_timeout"
        self._warned = False
        self._ids: Callable[[], tuple[str, str] | None] | None = None
        from loguru import logger

        self._log: Logger = logger.bind(service="telemetry")

    def _framework_attach(self, context: ServiceContext) -> None:
        """Called by the application before any service starts: name, stop bound, app name."""
        from loguru import logger

        self.name = context.name
        self._app_name = context.app_name or self._app_name
        self._bound, self._bound_source = stop_bound(context, type(self))
        self._log = logger.bind(service=context.name)

    @property
    def service_name(self) -> str:
        """``service.name`` of what is exported: ``telemetry.service_name``, else the app's class."""
        return self.settings.service_name or self._app_name

    @property
    def bound(self) -> float:
        """Seconds ``stop()`` gives the flush (the stop bound, less a reserve to report)."""
        return within(self._bound)

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Build the providers and exporters, and instrument the services that start next."""
        if self.tracer_provider is not None:
            raise FrameworkError(f"{self.name}: this TelemetryService was already started")
        from opentelemetry import metrics, trace
        from opentelemetry.sdk.resources import Resource

        from framework.services._telemetry_masking import masked_resource

        # OTEL_RESOURCE_ATTRIBUTES are merged in by create(): masked with the rest
        resource = masked_resource(Resource.create({"service.name": self.service_name}))
        self.tracer_provider = self._tracer_provider(resource)
        self.meter_provider = self._meter_provider(resource)
        global _globals_set
        if not _globals_set and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
            trace.set_tracer_provider(self.tracer_provider)
            metrics.set_meter_provider(self.meter_provider)
            _globals_set = True
        _quiet_sdk_loggers()
        self._ids = _span_ids
        log_span_ids(_span_ids)
        _instruments.register(self)
        self._log.info(
            f"telemetry ready: exporting to {self.settings.endpoint} as {self.service_name!r} "
            f"(sample ratio {self.settings.sample_ratio:g})"
        )

    def _export_timeout(self) -> float:
        return min(_MAX_EXPORT_TIMEOUT, self.bound)

    def _headers(self) -> dict[str, str]:
        return {key: value.get_secret_value() for key, value in self.settings.headers.items()}

    def _tracer_provider(self, resource: Any) -> Any:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

        from framework.services._telemetry_masking import MaskingExporter

        exporter = OTLPSpanExporter(
            endpoint=f"{self.settings.endpoint}/v1/traces",
            headers=self._headers(),
            timeout=self._export_timeout(),
        )
        self._exporter = MaskingExporter(exporter, self._export_failed)
        sampler = ParentBased(TraceIdRatioBased(self.settings.sample_ratio))
        provider = TracerProvider(resource=resource, sampler=sampler, shutdown_on_exit=False)
        timeout_ms = int(self._export_timeout() * 1000)
        provider.add_span_processor(
            BatchSpanProcessor(self._exporter, export_timeout_millis=timeout_ms)
        )
        return provider

    def _meter_provider(self, resource: Any) -> Any:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

        from framework.services._telemetry_masking import MaskingMetricExporter

        exporter = MaskingMetricExporter(
            endpoint=f"{self.settings.endpoint}/v1/metrics",
            headers=self._headers(),
            timeout=self._export_timeout(),
        )
        timeout_ms = int(self._export_timeout() * 1000)
        reader = PeriodicExportingMetricReader(exporter, export_timeout_millis=timeout_ms)
        return MeterProvider(resource=resource, metric_readers=[reader], shutdown_on_exit=False)

    def _export_failed(self, spans: int, error: str) -> None:
        """One warning for the life of the service: the endpoint refused or did not answer."""
        if self._warned:
            return
        self._warned = True
        self._log.warning(
            f"telemetry: {spans} span(s) could not be exported to {self.settings.endpoint} "
            f"({error}); spans are dropped while it fails; check telemetry.endpoint and the collector"
        )

    async def stop(self) -> None:
        """Flush and shut the providers down within the stop bound (less a reserve)."""
        _instruments.unregister(self)
        if self._ids is not None:
            log_span_ids(None)
            self._ids = None
        tracer, meter = self.tracer_provider, self.meter_provider
        if tracer is None:
            return
        self.tracer_provider = self.meter_provider = None
        bound = self.bound

        def flush() -> None:
            try:
                tracer.force_flush(int(bound * 1000))
                tracer.shutdown()
                meter.shutdown(timeout_millis=bound * 1000)
            except Exception as exc:  # the exporter's failures are reported through it
                self._export_failed(0, f"{type(exc).__name__}: {exc}")

        finished = await in_daemon_thread(flush, bound, f"framework-{self.name}-flush")
        if not finished and not self._warned:
            self._warned = True
            self._log.warning(
                f"telemetry: the flush to {self.settings.endpoint} did not finish within "
                f"{bound:.3g} s ({self._bound_source}, less a reserve); what was not exported "
                "is dropped"
            )

    # -- what the instrumented services call (see framework.services._instruments) --------------

    def wrap_asgi(self, app: Any) -> Any:
        """``app`` with a server span around every HTTP and websocket request."""
        from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

        return OpenTelemetryMiddleware(
            app,
            tracer_provider=self.tracer_provider,
            meter_provider=self.meter_provider,
            exclude_spans=["receive", "send"],
        )

    def trace_engine(self, engine: Any) -> None:
        """A span per statement of ``engine`` (a synchronous `Engine`; an async one's core),
        through OpenTelemetry's own engine tracer (`framework._compat.opentelemetry`)."""
        from framework._compat.opentelemetry import trace_engine

        trace_engine(self.tracer_provider, self.meter_provider, engine)


async def in_daemon_thread(func: Callable[[], object], seconds: float, name: str) -> bool:
    """Run ``func`` in a daemon thread and wait at most ``seconds`` for it: whether it finished.

    At the deadline the thread is abandoned; being a daemon, it never keeps the process alive.
    """
    done = threading.Event()

    def run() -> None:
        try:
            func()
        finally:
            done.set()

    threading.Thread(target=run, name=name, daemon=True).start()
    with anyio.move_on_after(seconds):
        # a threading.Event, polled: the thread must not need the event loop to say it is done
        while not done.is_set():  # noqa: ASYNC110
            await anyio.sleep(0.01)
    return done.is_set()


def stop_bound(context: ServiceContext, service_class: type) -> tuple[float, str]:
    """The stop bound of a service (seconds; 10 when unbounded) and the setting it came from."""
    stop = service_bounds(context.name, service_class, context.settings)[1]
    return (stop.seconds if stop.seconds else 10.0), stop.source


def within(seconds: float) -> float:
    """What of a stop bound the work may use: a reserve is kept to report the outcome."""
    return max(seconds * (1 - _RESERVE), seconds - 1.0)


def _span_ids() -> tuple[str, str] | None:
    """The current span's trace and span ids in hex, or None outside a span."""
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")


def _quiet_sdk_loggers() -> None:
    """The exporters' and the batch processor's own error lines are replaced by one warning of
    the service (`TelemetryService._export_failed`)."""
    import logging

    for name in ("opentelemetry.exporter", "opentelemetry.sdk._shared_internal"):
        lg = logging.getLogger(name)
        lg.addHandler(logging.NullHandler())
        lg.propagate = False
