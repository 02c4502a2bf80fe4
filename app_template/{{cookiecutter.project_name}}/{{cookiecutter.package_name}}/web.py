{% if cookiecutter.web == "fastapi" -%}
"""The HTTP API (FastAPI). The framework adds /livez and /readyz in front of it."""

from fastapi import FastAPI


def create_web_app() -> FastAPI:
    """The FastAPI application."""
    # endpoints.py imports the Container for its Provide[...] markers and the container imports
    # this module: importing the endpoints when the app is built keeps the imports acyclic.
    from {{ cookiecutter.package_name }} import endpoints

    app = FastAPI(title="{{ cookiecutter.project_name }}")
    app.include_router(endpoints.router)
    return app
{%- else -%}
"""The HTTP API (Starlette). The framework adds /livez and /readyz in front of it."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
{% if cookiecutter.include_database == "yes" %}
from {{ cookiecutter.package_name }}.orders import OrderRepository


def create_web_app(orders: OrderRepository) -> Starlette:
    async def list_orders(request: Request) -> JSONResponse:
        return JSONResponse(await orders.list())

    async def create_order(request: Request) -> JSONResponse:
        try:
            body = await request.json()
            item, quantity = str(body["item"]), int(body.get("quantity", 1))
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"item": str, "quantity": int}'}, status_code=422)
        if quantity < 1:
            return JSONResponse({"error": "quantity must be at least 1"}, status_code=422)
        return JSONResponse(await orders.add(item, quantity), status_code=201)

    return Starlette(
        routes=[
            Route("/orders", list_orders, methods=["GET"]),
            Route("/orders", create_order, methods=["POST"]),
        ]
    )
{% else %}

def create_web_app() -> Starlette:
    async def hello(request: Request) -> JSONResponse:
        return JSONResponse({"hello": "world"})

    return Starlette(routes=[Route("/hello", hello)])
{% endif %}
{%- endif %}
