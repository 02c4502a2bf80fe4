"""The built-in HTTP service: any ASGI app served by an embedded uvicorn.

``HttpService(app, settings)`` binds ``settings.host:settings.port`` in ``start()``, runs uvicorn's
``serve()`` in a task of its own and returns once uvicorn accepts connections (after the app's
lifespan startup). In front of the app it answers:

- ``livez_path`` (``/livez``): 200 while the event loop runs;
- ``readyz_path`` (``/readyz``): 200 only while the application is ready (every service started and
  no shutdown begun), else 503; with ``readyz_details``, a JSON body of service names and states;
- ``metrics_path`` (off by default): Prometheus metrics, from a registry private to the service.

Every ``http`` and ``websocket`` scope carries ``scope["extensions"]["framework.shutdown"]``, a
`ShutdownNotice` set at the first moment of shutdown; from then on every response carries
``Connection: close``.

``stop()`` drains. The application has already turned ``/readyz`` to 503 and waited
``lifecycle.shutdown_delay``; then the connections queued in the listen backlog are accepted and
the listening socket closes, idle keep-alive connections and websockets get a short lame-duck
window (then are closed; websockets with 1012), and the requests in flight are waited for (see
``_drain``). Those still running when the stop bound is close (a reserve of a fifth of it, at most
1 s, is kept for the rest) are cut off: cancelled, answered 503 when no response had started,
counted, and ``stop()`` then raises `RequestsCutOffError`; connections still open half-way through
the reserve are aborted. The app's lifespan shutdown runs last. If ``stop()`` is cancelled (its
bound passed, or a forced shutdown), what is left is cut off at once and the server ends without
the lifespan shutdown.

uvicorn runs on asyncio only: on trio, ``start()`` raises `HttpServiceError` saying so. uvicorn and
prometheus-client are imported when a service is created or started, not with this module.
"""

from __future__ import annotations

from framework._config.settings import HttpSettings
from framework.services._http._errors import HttpServiceError, ListenError, RequestsCutOffError
from framework.services._http._front import ASGIApp
from framework.services._http._service import HttpService

__all__ = (
    "ASGIApp",
    "HttpService",
    "HttpServiceError",
    "HttpSettings",
    "ListenError",
    "RequestsCutOffError",
)
