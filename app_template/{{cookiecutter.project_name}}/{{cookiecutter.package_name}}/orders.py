"""Orders, stored with SQLAlchemy Core through the database service's engine."""

from typing import Any

from sqlalchemy import Column, Integer, MetaData, String, Table, func, insert, select

from framework.services import DatabaseService

metadata = MetaData()
orders = Table(
    "orders",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("item", String(200), nullable=False),
    Column("quantity", Integer, nullable=False),
)


class OrderRepository:
    def __init__(self, db: DatabaseService) -> None:
        self.db = db

    async def add(self, item: str, quantity: int) -> dict[str, Any]:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(insert(orders).values(item=item, quantity=quantity))
            (order_id,) = result.inserted_primary_key or (None,)
        return {"id": order_id, "item": item, "quantity": quantity}

    async def list(self) -> list[dict[str, Any]]:
        async with self.db.engine.connect() as connection:
            rows = await connection.execute(select(orders).order_by(orders.c.id))
            return [dict(row._mapping) for row in rows]

    async def count(self) -> int:
        async with self.db.engine.connect() as connection:
            return int((await connection.execute(select(func.count()).select_from(orders))).scalar_one())
