"""An order service: HTTP API, SQLite database, background worker.

Run it with `make run` (or `framework run orders.app:App` from `examples/`), then:

    curl -X POST localhost:8000/orders -d '{"item": "book", "quantity": 2}'
    curl localhost:8000/orders
    curl localhost:8000/slow?seconds=3 &    # then Ctrl+C: the request still completes
    curl localhost:8000/readyz              # 503 from the first moment of shutdown

What it shows: `db` starts first (http and worker need it) and stops last; http and worker start
concurrently; on Ctrl+C readiness flips to 503, traffic is served for `lifecycle.shutdown_delay`,
in-flight requests drain, the worker's `run()` is cancelled before its `stop()`, the pool is drained
and disposed, the logs are flushed and a timeline of every start and stop is printed.
"""

from __future__ import annotations

from typing import Any

import anyio
from dependency_injector import containers, providers
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from framework import Application, Service, Settings
from framework.services import DatabaseService, HttpService

metadata = MetaData()
orders_table = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
)


class WorkerSettings(BaseModel):
    """Settings section ``worker``."""

    model_config = ConfigDict(extra="forbid")

    interval: float = Field(10.0, gt=0, description="Seconds between two reports.")


class OrdersSettings(Settings):
    worker: WorkerSettings = Field(default_factory=WorkerSettings)


class OrdersDatabase(DatabaseService):
    """The built-in database service, subclassed to create the schema on start."""

    async def start(self) -> None:
        await super().start()
        async with self.engine.begin() as connection:
            await connection.run_sync(metadata.create_all)


class Orders:
    """A repository: not a service itself, but it makes whoever uses it depend on `db`."""

    def __init__(self, db: DatabaseService) -> None:
        self.db = db

    async def add(self, item: str, quantity: int) -> dict[str, Any]:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(insert(orders_table).values(item=item, quantity=quantity))
        return {"id": result.inserted_primary_key[0], "item": item, "quantity": quantity}

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as connection:
            rows = await connection.execute(select(orders_table).order_by(orders_table.c.id))
            return [dict(row._mapping) for row in rows]

    async def count(self) -> int:
        async with self.db.engine.connect() as connection:
            query = select(func.count()).select_from(orders_table)
            return int((await connection.execute(query)).scalar_one())


class Reporter(Service):
    """A worker with a `run()` loop; cancelled at shutdown before its `stop()` is called."""

    def __init__(self, orders: Orders, settings: WorkerSettings) -> None:
        self.orders = orders
        self.settings = settings

    async def run(self) -> None:
        while True:
            logger.bind(service="worker").info(f"{await self.orders.count()} order(s) so far")
            await anyio.sleep(self.settings.interval)

    async def stop(self) -> None:
        logger.bind(service="worker").info("worker stopped")


def create_web_app(orders: Orders) -> Starlette:
    async def list_orders(request: Request) -> JSONResponse:
        return JSONResponse(await orders.list())

    async def create_order(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            item, quantity = str(body["item"]), int(body.get("quantity", 1))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"item": str, "quantity": int}'}, status_code=422)
        return JSONResponse(await orders.add(item, quantity), status_code=201)

    async def slow(request: Request) -> JSONResponse:
        seconds = min(float(request.query_params.get("seconds", "2")), 30.0)
        await anyio.sleep(seconds)
        return JSONResponse({"slept": seconds})

    return Starlette(
        routes=[
            Route("/orders", list_orders, methods=["GET"]),
            Route("/orders", create_order, methods=["POST"]),
            Route("/slow", slow),
        ]
    )


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=OrdersSettings)
    db = providers.Singleton(OrdersDatabase, settings=settings.provided.database)
    orders = providers.Factory(Orders, db=db)
    worker = providers.Singleton(Reporter, orders=orders, settings=settings.provided.worker)
    http = providers.Singleton(
        HttpService,
        app=providers.Callable(create_web_app, orders=orders),
        settings=settings.provided.http,
    )


class App(Application):
    container_class = Container
    settings_class = OrdersSettings


if __name__ == "__main__":
    App.main()
