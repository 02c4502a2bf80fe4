"""The template's app (``framework new``: FastAPI, the database) on bare uvicorn, no framework.

The canonical way to write what the generated project does: settings from pydantic-settings
(``APP_DATABASE_URL``), a ``DeclarativeContainer`` holding the async SQLAlchemy engine (aiosqlite)
and the repository, endpoints taking the repository with ``Annotated[..., Depends(Provide[...])]``
and ``@inject``, the container wired to this module, and a lifespan that creates the schema, runs
the worker's loop (a count of the orders logged with loguru every few seconds) and disposes of the
engine. A baseline for the time to ready: the same libraries, the same work, no framework.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import anyio
from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, FastAPI
from loguru import logger
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
)


class AppSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="APP_")

    database_url: str = "sqlite+aiosqlite:///./shop.db"
    worker_interval: float = 5.0


class OrderRepository:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def add(self, item: str, quantity: int) -> dict[str, Any]:
        async with self.engine.begin() as connection:
            result = await connection.execute(insert(orders).values(item=item, quantity=quantity))
            (order_id,) = result.inserted_primary_key or (None,)
        return {"id": order_id, "item": item, "quantity": quantity}

    async def list(self) -> list[dict[str, Any]]:
        async with self.engine.connect() as connection:
            rows = await connection.execute(select(orders).order_by(orders.c.id))
            return [dict(row._mapping) for row in rows]

    async def count(self) -> int:
        async with self.engine.connect() as connection:
            query = select(func.count()).select_from(orders)
            return int((await connection.execute(query)).scalar_one())


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(modules=[__name__])

    settings = providers.Singleton(AppSettings)
    engine = providers.Singleton(create_async_engine, settings.provided.database_url)
    orders = providers.Factory(OrderRepository, engine=engine)


router = APIRouter()
Orders = Annotated[OrderRepository, Depends(Provide[Container.orders])]


class NewOrder(BaseModel):
    item: str = Field(min_length=1, max_length=200)
    quantity: int = Field(1, ge=1)


@router.get("/orders")
@inject
async def list_orders(repository: Orders) -> list[dict[str, Any]]:
    return await repository.list()


@router.post("/orders", status_code=201)
@inject
async def create_order(order: NewOrder, repository: Orders) -> dict[str, Any]:
    return await repository.add(order.item, order.quantity)


container = Container()


async def worker(repository: OrderRepository, interval: float) -> None:
    while True:
        logger.info(f"{await repository.count()} order(s) so far")
        await anyio.sleep(interval)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = container.engine()
    async with engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(worker, container.orders(), container.settings().worker_interval)
        yield
        tasks.cancel_scope.cancel()
    await engine.dispose()


app = FastAPI(title="shop", lifespan=lifespan)
app.include_router(router)
