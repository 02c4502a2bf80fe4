"""The services and how they depend on each other (the framework derives the order from this)."""

from dependency_injector import containers, providers

from framework.services import HttpService
{% if cookiecutter.include_database == "yes" %}
from {{ cookiecutter.package_name }}.database import OrdersDatabase
from {{ cookiecutter.package_name }}.orders import OrderRepository
{% endif %}from {{ cookiecutter.package_name }}.settings import AppSettings
from {{ cookiecutter.package_name }}.web import create_web_app
from {{ cookiecutter.package_name }}.worker import Worker


class Container(containers.DeclarativeContainer):
{% if cookiecutter.web == "fastapi" %}    # The endpoints get their dependencies through wiring: `Provide[Container.x]` markers in
    # these modules are filled in from this container when the application creates it.
    wiring_config = containers.WiringConfiguration(modules=[".endpoints"])

{% endif %}    settings = providers.Dependency(instance_of=AppSettings)

    # Optional: traces and metrics over OTLP/HTTP (pip install 'framework[otel]'; section
    # `telemetry`) and error reports (pip install 'framework[sentry]'; section `sentry`). The HTTP
    # service and the database depend on them without wiring: they start first and flush last.
    # Their stop bounds add to the longest chain of stops, so give them short ones in
    # config/default.toml (`[services.telemetry]` and `[services.sentry]`, `stop_timeout = 1.0`),
    # or raise lifecycle.shutdown_timeout with the grace period: `framework check` says which.
    # Import them from framework.services, then uncomment:
    # telemetry = providers.Singleton(TelemetryService, settings.provided.telemetry)
    # sentry = providers.Singleton(SentryService, settings.provided.sentry)
{% if cookiecutter.include_database == "yes" %}
    # starts first, stops last: both the worker and the HTTP service use it through the repository
    db = providers.Singleton(OrdersDatabase, settings=settings.provided.database)
    orders = providers.Factory(OrderRepository, db=db)
    worker = providers.Singleton(Worker, orders=orders, settings=settings.provided.worker)
{% if cookiecutter.web == "fastapi" %}    # The endpoints reach `orders` (so `db`) through wiring: that makes http depend on db, so it
    # starts after db and stops before it (`framework graph` marks the edge as wired).
    http = providers.Singleton(
        HttpService, app=providers.Callable(create_web_app), settings=settings.provided.http
    )
{% else %}    http = providers.Singleton(
        HttpService,
        app=providers.Callable(create_web_app, orders=orders),
        settings=settings.provided.http,
    )
{% endif %}{% else %}
    worker = providers.Singleton(Worker, settings=settings.provided.worker)
    http = providers.Singleton(
        HttpService, app=providers.Callable(create_web_app), settings=settings.provided.http
    )
{% endif %}
