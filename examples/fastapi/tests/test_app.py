"""The whole application, with the framework's pytest fixtures: a real SQLite file, uvicorn on
a real socket, the lifespan, the order, the drain."""

import pytest


@pytest.fixture
def framework_overrides(tmp_path):
    return {"database.url": f"sqlite:///{tmp_path}/test.db", "logging.level": "WARNING"}


def test_the_database_starts_before_http_and_stops_after(framework_app):
    assert framework_app.app.graph.layers() == [["db"], ["http"]]
    assert framework_app.events.started() == ["db", "http"]


async def test_tasks_round_trip_through_the_database(framework_client):
    created = await framework_client.post("/tasks", json={"title": "write the docs"})
    assert created.status_code == 201
    task_id = created.json()["id"]
    done = await framework_client.post(f"/tasks/{task_id}/done")
    assert done.json() == {"id": task_id, "title": "write the docs", "done": True}
    assert (await framework_client.get("/tasks")).json() == [done.json()]


async def test_ready_once_everything_started(framework_client):
    assert (await framework_client.get("/readyz")).status_code == 200
