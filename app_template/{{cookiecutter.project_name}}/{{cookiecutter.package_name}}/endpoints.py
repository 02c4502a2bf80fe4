"""The endpoints. Their dependencies come from the container through dependency-injector wiring:
`Container.wiring_config` names this module, `@inject` and `Depends(Provide[Container.x])` mark
what each endpoint needs."""

from typing import Any

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends
{% if cookiecutter.include_database == "yes" %}from pydantic import BaseModel, Field

from {{ cookiecutter.package_name }}.container import Container
from {{ cookiecutter.package_name }}.orders import OrderRepository

router = APIRouter()


class NewOrder(BaseModel):
    item: str = Field(min_length=1, max_length=200)
    quantity: int = Field(1, ge=1)


@router.get("/orders")
@inject
async def list_orders(
    orders: OrderRepository = Depends(Provide[Container.orders]),
) -> list[dict[str, Any]]:
    return await orders.list()


@router.post("/orders", status_code=201)
@inject
async def create_order(
    order: NewOrder,
    orders: OrderRepository = Depends(Provide[Container.orders]),
) -> dict[str, Any]:
    return await orders.add(order.item, order.quantity)
{% else %}
from {{ cookiecutter.package_name }}.container import Container
from {{ cookiecutter.package_name }}.settings import AppSettings

router = APIRouter()


@router.get("/hello")
@inject
async def hello(settings: AppSettings = Depends(Provide[Container.settings])) -> dict[str, Any]:
    return {"hello": "world", "worker_interval": settings.worker.interval}
{% endif %}
