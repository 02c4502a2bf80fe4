"""Finding and binding the HTTP services' sockets of an application without starting it."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from dependency_injector import containers, providers

from framework import Application, Settings
from framework._config.settings import HttpSettings
from framework._process.listeners import bind_listeners, http_listen_settings
from framework.services._http import HttpService

created: list[str] = []


async def asgi(scope: Any, receive: Any, send: Any) -> None:
    pass


class Recorded(HttpService):
    def __init__(self, app: Any, settings: HttpSettings | None = None) -> None:
        created.append("http")
        super().__init__(app, settings)


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)
    web = providers.Singleton(Recorded, app=asgi, settings=settings.provided.http)
    admin = providers.Singleton(HttpService, asgi)  # no settings: the service's defaults


class App(Application):
    container_class = Container


def test_http_settings_are_read_from_the_providers_without_creating_a_service() -> None:
    """Each HttpService provider's settings argument is evaluated; no service is created."""
    app = App(overrides={"http.port": 8123, "http.host": "::1"})
    found = http_listen_settings(app)
    assert list(found) == ["web", "admin"]
    assert (found["web"].host, found["web"].port) == ("::1", 8123)
    assert found["admin"] == HttpSettings()
    assert created == []


def test_bind_listeners_binds_each_service_once_and_names_it() -> None:
    """Port 0 gets a free port; each listener carries its service name and listens already."""
    listeners = bind_listeners(
        {"web": HttpSettings(port=0), "admin": HttpSettings(host="127.0.0.1", port=0)}
    )
    try:
        assert [x.name for x in listeners] == ["web", "admin"]
        for listener in listeners:
            assert listener.address.startswith("127.0.0.1:")
            port = listener.sock.getsockname()[1]
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
    finally:
        for listener in listeners:
            listener.sock.close()


def test_an_address_in_use_names_the_service_and_what_to_change() -> None:
    """EADDRINUSE: an OSError naming the service and the address; nothing stays bound."""
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(OSError) as caught:
            bind_listeners({"web": HttpSettings(port=0), "api": HttpSettings(port=port)})
    message = str(caught.value)
    assert f"service 'api': cannot listen on 127.0.0.1:{port}" in message
    assert "http.port" in message
