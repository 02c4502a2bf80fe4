"""The listening sockets of an application's HTTP services, found and bound without starting it.

The supervisor binds each once and passes it to every worker; `http_listen_settings` reads each
HttpService's settings from its provider, creating no service.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from framework._config.settings import HttpSettings
    from framework._runtime.application import Application

__all__ = ("Listener", "bind_listeners", "http_listen_settings")


@dataclass(frozen=True)
class Listener:
    """A listening socket the supervisor bound for the service ``name``."""

    name: str
    sock: socket.socket

    @property
    def address(self) -> str:
        host, port = self.sock.getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def http_listen_settings(app: Application) -> dict[str, HttpSettings]:
    """The ``HttpSettings`` of each HttpService of ``app``, by service name; creates no service.

    Read from the provider's ``settings`` argument (``settings=settings.provided.http``), which
    is evaluated; a provider without one gets ``HttpSettings()`` defaults, as the service would.
    """
    from dependency_injector import providers

    from framework._config.settings import HttpSettings
    from framework._runtime.discovery import service_providers
    from framework.services._http import HttpService

    found: dict[str, HttpSettings] = {}
    for name, provider in service_providers(app.container).items():
        if not issubclass(provider.provides, HttpService):
            continue
        value = provider.kwargs.get("settings")
        if value is None and len(provider.args) > 1:
            value = provider.args[1]
        if providers.is_provider(value):
            value = value()
        found[name] = value if isinstance(value, HttpSettings) else HttpSettings()
    return found


def bind_listeners(services: Mapping[str, HttpSettings]) -> list[Listener]:
    """A listening socket per service: inherited from systemd when one matches, else bound here.

    Raises `OSError` with a message naming the service, the address and what to change.
    """
    from framework._runtime.systemd import take_inherited_socket

    listeners: list[Listener] = []
    try:
        for name, http in services.items():
            sock = take_inherited_socket(http.host, http.port, name)
            if sock is None:
                sock = _listen(name, http.host, http.port, http.backlog)
            listeners.append(Listener(name, sock))
    except OSError:
        for listener in listeners:
            listener.sock.close()
        raise
    return listeners


def _listen(name: str, host: str, port: int, backlog: int) -> socket.socket:
    """The HTTP service's own `listen`, its message naming the service (``service 'api': ...``)."""
    from framework.services._http._server import listen

    try:
        return listen(host, port, backlog)
    except OSError as exc:
        raise OSError(exc.errno, f"service {name!r}: {exc}") from None
