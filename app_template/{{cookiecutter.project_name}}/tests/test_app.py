"""The service, started for real in-process by the framework's testing kit."""

import pytest

from framework.testing import run_app
from {{ cookiecutter.package_name }}.app import App

{% if cookiecutter.include_database == "yes" %}
async def test_create_and_list_orders(framework_app, framework_client):
    created = await framework_client.post("/orders", json={"item": "book", "quantity": 2})
    assert created.status_code == 201
    listed = await framework_client.get("/orders")
    assert [(o["item"], o["quantity"]) for o in listed.json()] == [("book", 2)]


async def test_bad_order_is_rejected(framework_client):
    response = await framework_client.post("/orders", json={"quantity": 2})
    assert response.status_code == 422


@pytest.mark.anyio
async def test_ready_then_stopped_in_reverse_order(framework_overrides):
    async with run_app(App, overrides=framework_overrides) as harness:
        assert (await harness.client().get("/readyz")).status_code == 200
        assert (await harness.client().get("/livez")).status_code == 200
    stopped = harness.events.stopped()
    assert stopped[-1] == "db"  # the database outlives everything that uses it
    assert set(stopped) == {"http", "worker", "db"}
{% else %}
async def test_hello(framework_client):
    response = await framework_client.get("/hello")
    assert response.json()["hello"] == "world"


async def test_ready(framework_client):
    assert (await framework_client.get("/readyz")).status_code == 200
{% endif %}

def test_start_order():
    from framework._runtime.discovery import discover_graph, service_providers

    from {{ cookiecutter.package_name }}.container import Container

    graph = discover_graph(service_providers(Container))
{% if cookiecutter.include_database == "yes" %}    assert graph.layers() == [["db"], ["http", "worker"]]
{% else %}    assert graph.layers() == [["http", "worker"]]
{% endif %}
