"""Starlette apps served by bare uvicorn, baselines for the time to ready (no framework imported).

- ``orders_app``: what the example (``examples/orders``) serves, without the framework: Starlette,
  and in its lifespan a SQLAlchemy ``AsyncEngine`` on ``$BENCH_DB_URL``, ``SELECT 1`` and the
  schema created; ``GET /orders`` reads the table.
- ``starlette_app``: a small Starlette app without a database.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import Column, Integer, MetaData, String, Table, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def _items(request: Request) -> JSONResponse:
    return JSONResponse([{"id": 1, "item": "book", "quantity": 2}])


async def _create(request: Request) -> JSONResponse:
    body = await request.json()
    return JSONResponse(body, status_code=201)


starlette_app = Starlette(
    routes=[
        Route("/", _items, methods=["GET"]),
        Route("/orders", _items, methods=["GET"]),
        Route("/orders", _create, methods=["POST"]),
    ]
)


metadata = MetaData()
orders_table = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
)
_engine: AsyncEngine | None = None


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    global _engine
    _engine = create_async_engine(os.environ.get("BENCH_DB_URL", "sqlite+aiosqlite:///./bench.db"))
    async with _engine.begin() as connection:
        await connection.execute(text("SELECT 1"))
        await connection.run_sync(metadata.create_all)
    yield
    await _engine.dispose()


async def _orders(request: Request) -> JSONResponse:
    assert _engine is not None
    async with _engine.connect() as connection:
        rows = await connection.execute(select(orders_table).order_by(orders_table.c.id))
        return JSONResponse([dict(row._mapping) for row in rows])


orders_app = Starlette(routes=[Route("/orders", _orders, methods=["GET"])], lifespan=_lifespan)
