"""The built-in HTTP service: any ASGI app served by an embedded uvicorn."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ("HttpSettings",)


class HttpSettings(BaseModel):
    """Settings section ``http``."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(
        "127.0.0.1", description="Interface to bind; 0.0.0.0 to accept outside traffic."
    )
    port: int = Field(8000, ge=0, le=65535, description="TCP port; 0 picks a free one.")
    loop: Literal["auto", "asyncio", "uvloop"] = Field("auto", description="uvicorn event loop.")
    http: Literal["auto", "h11", "httptools"] = Field(
        "auto", description="HTTP/1.1 implementation."
    )
    timeout_keep_alive: float = Field(
        5.0, gt=0, description="Seconds an idle keep-alive connection stays open."
    )
    backlog: int = Field(2048, gt=0, description="Listen backlog of the socket.")
    limit_concurrency: int | None = Field(
        None, gt=0, description="Answer 503 above this many concurrent connections."
    )
    proxy_headers: bool = Field(False, description="Trust X-Forwarded-* from forwarded_allow_ips.")
    forwarded_allow_ips: str = Field(
        "127.0.0.1", description="Comma-separated proxies trusted for proxy headers."
    )
    root_path: str = Field("", description="ASGI root_path when served under a path prefix.")
    access_log: bool = Field(True, description="Log one line per request.")
    livez_path: str = Field(
        "/livez", description="Liveness probe path: 200 while the event loop runs."
    )
    readyz_path: str = Field(
        "/readyz", description="Readiness probe path: 200 only when every service has started."
    )
    readyz_details: bool = Field(
        False, description="Include each service's state in the /readyz JSON body."
    )
    metrics_path: str | None = Field(
        None, description="Serve Prometheus metrics at this path; None: off."
    )
