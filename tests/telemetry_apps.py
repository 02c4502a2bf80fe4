"""Applications with telemetry, for `tests/test_telemetry.py` (run with `framework run`).

``TracedApp``: a `TelemetryService`, a `DatabaseService` (SQLite file) and an `HttpService` serving
a plain ASGI app, with no edge to the telemetry declared (discovery adds them):

- ``/plain``: answers without touching the database;
- ``/query``: runs one statement, then answers;
- ``/secret``: puts ``app.token`` (a SecretStr), the database URL with its password and the values
  of ``telemetry.headers`` on the request's span (an attribute, a list attribute, an event, a
  recorded exception) and on a child span of its own (its name, an attribute, an event, a recorded
  exception, its status text), logs a line inside each, counts a metric whose description and
  data-point attributes hold them too, and answers.

``SentryApp``: the same with a `SentryService`; ``/report`` sends Sentry an exception and a message
that hold the secrets. Each service journals its stop (``<name> stopping``/``<name> stopped``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from dependency_injector import containers, providers
from pydantic import BaseModel, Field, SecretStr
from sqlalchemy import text

from framework import Application, Settings
from framework.services import DatabaseService, HttpService, SentryService, TelemetryService

_lock = threading.Lock()


class AppSection(BaseModel):
    journal: Path | None = None
    token: SecretStr = SecretStr("")


class TracedSettings(Settings):
    app: AppSection = Field(default_factory=AppSection)


def note(section: AppSection, line: str) -> None:
    if section.journal is not None:
        with _lock, section.journal.open("a", encoding="utf-8") as f:
            f.write(line + "\n")


class Journaled:
    """Mixed into a service: journal the begin and end of its stop."""

    section: AppSection

    async def stop(self) -> None:
        note(self.section, f"{type(self).__name__} stopping")
        await super().stop()  # type: ignore[misc]
        note(self.section, f"{type(self).__name__} stopped")


class Telemetry(Journaled, TelemetryService):
    def __init__(self, settings: Any, section: AppSection) -> None:
        super().__init__(settings)
        self.section = section


class Sentry(Journaled, SentryService):
    def __init__(self, settings: Any, section: AppSection) -> None:
        super().__init__(settings)
        self.section = section


class Db(Journaled, DatabaseService):
    def __init__(self, settings: Any, section: AppSection) -> None:
        super().__init__(settings)
        self.section = section


class Http(Journaled, HttpService):
    def __init__(self, app: Any, settings: Any, section: AppSection) -> None:
        super().__init__(app, settings)
        self.section = section


async def _answer(send: Any, body: bytes) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def make_app(
    db: Db, section: AppSection, database_url: str, headers: dict[str, SecretStr] | None = None
) -> Any:
    """A plain ASGI app: /plain, /query, /secret and /report (see the module docstring)."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        path = scope["path"]
        if path == "/query":
            async with db.engine.connect() as connection:
                value = (await connection.execute(text("SELECT 1 + :x"), {"x": 7})).scalar()
            await _answer(send, str(value).encode())
        elif path == "/secret":
            header_values = [v.get_secret_value() for v in (headers or {}).values()]
            secret_span(section, database_url, " ".join(header_values))
            await _answer(send, b"ok")
        elif path == "/report":
            import sentry_sdk

            token = section.token.get_secret_value()
            sentry_sdk.capture_exception(ValueError(f"token {token} url {database_url}"))
            sentry_sdk.capture_message(f"connecting to {database_url} with {token}")
            await _answer(send, b"ok")
        else:
            await _answer(send, b"plain")

    return app


def secret_span(section: AppSection, database_url: str, header: str = "") -> None:
    """What careless app code does: secrets on the current span and on a child span of its own
    (name, attributes, events, recorded exceptions, status text), a log line inside each, and
    a metric (description, data-point attributes)."""
    from loguru import logger
    from opentelemetry import metrics, trace
    from opentelemetry.trace import Status, StatusCode

    token = section.token.get_secret_value()
    span = trace.get_current_span()
    span.set_attribute("app.token", token)
    span.set_attribute("app.urls", [database_url, "plain"])
    span.add_event(f"login with {token}", {"url": database_url})
    span.record_exception(ValueError(f"cannot use {token} for {database_url}"))
    logger.info("inside the secret span")
    tracer = trace.get_tracer(__name__)
    with tracer.start_as_current_span(f"login {token}", record_exception=False) as child:
        child.set_attribute("app.header", header)
        child.set_attribute(f"app.key.{token}", "in the attribute's key")
        child.add_event("sent", {"header": header, "urls": [database_url]})
        child.record_exception(PermissionError(f"{header} refused by {database_url}"))
        child.set_status(Status(StatusCode.ERROR, f"denied: {token} at {database_url}"))
        logger.info("inside the child span")
    logins = metrics.get_meter(__name__).create_counter(
        "app.logins", description=f"logins with {token}"
    )
    logins.add(1, {"url": database_url, "header": header})


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=TracedSettings)
    section = settings.provided.app
    telemetry = providers.Singleton(Telemetry, settings.provided.telemetry, section)
    db = providers.Singleton(Db, settings.provided.database, section)
    http = providers.Singleton(
        Http,
        app=providers.Factory(
            make_app,
            db,
            section,
            settings.provided.database.url,
            settings.provided.telemetry.headers,
        ),
        settings=settings.provided.http,
        section=section,
    )


class TracedApp(Application):
    container_class = Container
    settings_class = TracedSettings


class SentryContainer(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=TracedSettings)
    section = settings.provided.app
    sentry = providers.Singleton(Sentry, settings.provided.sentry, section)
    db = providers.Singleton(Db, settings.provided.database, section)
    http = providers.Singleton(
        Http,
        app=providers.Factory(make_app, db, section, settings.provided.database.url),
        settings=settings.provided.http,
        section=section,
    )


class SentryApp(Application):
    container_class = SentryContainer
    settings_class = TracedSettings
