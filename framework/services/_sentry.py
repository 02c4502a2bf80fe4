"""`SentryService`: sentry-sdk initialised at start, flushed within its stop bound, secrets masked.

``start()`` calls ``sentry_sdk.init`` from the ``sentry`` section (``dsn``, ``environment``,
``traces_sample_rate``) with a ``before_send`` (and ``before_send_span``) hook that passes every
string of the event through the secret masking of the logs: no secret the settings hold is ever
part of an event. sentry-sdk's own exit hook gets no time (``shutdown_timeout=0``): ``stop()``
flushes, in a daemon thread waited for within the stop bound (less a reserve), after the HTTP
servers and databases (which depend on this service) have stopped.

A DSN that refuses or never answers costs one warning line for the life of the service: the
transport is sentry-sdk's own ``HttpTransport``, counting what it reports lost
(``record_lost_event``: network and send errors, a full queue, a rate limit), and a flush that
times out is the same warning. urllib3's retry lines from sentry-sdk's worker thread are left out
(`_QuietSenderRetries`): the warning says it once.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any, ClassVar

from framework._config.settings import SentrySettings
from framework._engine.errors import FrameworkError
from framework._engine.secrets import mask
from framework._engine.service import Service
from framework.services._telemetry import in_daemon_thread, require, stop_bound, within

if TYPE_CHECKING:
    from loguru import Logger

    from framework._runtime.context import ServiceContext

__all__ = ("SentryService", "SentrySettings", "masked_event")

# what the transport reports lost because it could not send (not what a hook or sampling dropped)
_UNSENT = frozenset({"network_error", "send_error", "queue_overflow", "ratelimit_backoff"})
_WORKER_THREAD = "sentry-sdk.BackgroundWorker"  # the name sentry-sdk gives its sending thread


def masked_event(value: Any) -> Any:
    """``value`` (an event, or any part of one) with every string masked, keys too."""
    if isinstance(value, str):
        return mask(value)
    if isinstance(value, dict):
        return {masked_event(k): masked_event(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(masked_event(v) for v in value)
    return value


def _before_send(event: Any, hint: Any) -> Any:
    return masked_event(event)


def _masking_hooks() -> dict[str, Any]:
    """The hooks that mask every event before it is sent: errors and messages (``before_send``),
    and spans (``before_send_span``, sentry-sdk 3)."""
    return {"before_send": _before_send, "before_send_span": _before_send}


class _QuietSenderRetries(logging.Filter):
    """Leaves out urllib3's "Retrying ..." lines logged from sentry-sdk's sending thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        return threading.current_thread().name != _WORKER_THREAD


def _counting_transport(on_lost: Any) -> Any:
    """sentry-sdk's ``HttpTransport``, calling ``on_lost(reason)`` for every item it could not
    send (``record_lost_event``, its public report of losses)."""
    from sentry_sdk.transport import HttpTransport

    class CountingTransport(HttpTransport):
        def record_lost_event(
            self, reason: str, data_category: Any = None, item: Any = None, *, quantity: int = 1
        ) -> None:
            category = item.data_category if item is not None else data_category
            if reason in _UNSENT and category != "internal":  # "internal": its client reports
                on_lost(reason)
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    return CountingTransport


class SentryService(Service):
    """Error reporting to Sentry (extra ``sentry``); with no ``sentry.dsn``, nothing is sent."""

    _framework_precedes: ClassVar[frozenset[str]] = frozenset(
        {
            "framework.services._http._service.HttpService",
            "framework.services._database.DatabaseService",
        }
    )

    def __init__(self, settings: SentrySettings | None = None) -> None:
        require("sentry", "sentry_sdk")  # a missing extra fails the build of the app
        self.settings = settings if settings is not None else SentrySettings()
        self.name = "sentry"
        self._bound, self._bound_source = 10.0, "lifecycle.stop_timeout"
        self._client: Any = None
        self._lost = 0
        self._warned = False
        self._quiet = _QuietSenderRetries()
        from loguru import logger

        self._log: Logger = logger.bind(service="sentry")

    def _framework_attach(self, context: ServiceContext) -> None:
        """Called by the application before any service starts: name and stop bound."""
        from loguru import logger

        self.name = context.name
        self._bound, self._bound_source = stop_bound(context, type(self))
        self._log = logger.bind(service=context.name)

    async def start(self) -> None:
        """Initialise sentry-sdk (with the masking hooks)."""
        if self._client is not None:
            raise FrameworkError(f"{self.name}: this SentryService was already started")
        import sentry_sdk

        dsn = self.settings.dsn.get_secret_value() if self.settings.dsn is not None else None
        try:
            sentry_sdk.init(
                dsn=dsn or None,
                environment=self.settings.environment,
                traces_sample_rate=self.settings.traces_sample_rate,
                shutdown_timeout=0,
                transport=_counting_transport(self._event_lost) if dsn else None,
                **_masking_hooks(),
            )
        except Exception as exc:  # a malformed DSN
            raise FrameworkError(
                f"sentry.dsn is not usable: {mask(str(exc))}; set it to the DSN of the project, "
                "like https://<key>@<host>/<project id>"
            ) from None
        self._client = sentry_sdk.get_client()
        logging.getLogger("urllib3.connectionpool").addFilter(self._quiet)
        where = "events go to the configured DSN" if dsn else "no sentry.dsn: nothing is sent"
        self._log.info(f"sentry ready: {where}")

    def _event_lost(self, reason: str) -> None:
        """Called from sentry-sdk's sending thread: count, and warn the first time."""
        self._lost += 1
        self._warn(f"event(s) could not be sent ({reason})")

    def _warn(self, what: str) -> None:
        """One warning for the life of the service."""
        if self._warned:
            return
        self._warned = True
        self._log.warning(
            f"sentry: {what}; events are dropped while it fails; check sentry.dsn and that its "
            "host is reachable"
        )

    async def stop(self) -> None:
        """Flush the queued events within the stop bound (less a reserve), then close."""
        client, self._client = self._client, None
        if client is None:
            return
        bound = within(self._bound)
        timeout = bound * 0.9  # the flush's own deadline, inside the wait for its thread
        pending: list[int] = []
        timed_out = threading.Event()

        def flush() -> None:
            started = time.monotonic()
            # the callback is called when events are still queued after a first short wait
            client.flush(timeout=timeout, callback=lambda n, _t: pending.append(n))
            if pending and time.monotonic() - started >= timeout - 0.01:
                timed_out.set()
            client.close(timeout=0)

        finished = await in_daemon_thread(flush, bound, f"framework-{self.name}-flush")
        logging.getLogger("urllib3.connectionpool").removeFilter(self._quiet)
        if not finished or timed_out.is_set():
            self._warn(
                f"the flush did not finish within {bound:.3g} s ({self._bound_source}, less a "
                "reserve)"
            )
