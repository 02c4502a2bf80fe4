"""The endpoints alone, tested the way FastAPI users do: TestClient, a provider overridden.

The container wires the endpoints when it is created; the repository is replaced by an in-memory
one, so no database is involved. TestClient is used without ``with``: the lifespan (which
creates the schema in the database) does not run.
"""

from collections.abc import Iterator

import pytest
from dependency_injector import providers
from fastapi.testclient import TestClient
from todo.application import AppContainer, create_api
from todo.models import Task
from todo.repositories import TaskNotFoundError


class InMemoryTasks:
    """Stands in for TaskRepository."""

    def __init__(self) -> None:
        self.tasks: dict[int, Task] = {}

    def all(self) -> list[Task]:
        return list(self.tasks.values())

    def add(self, title: str) -> Task:
        task = Task(id=len(self.tasks) + 1, title=title, done=False)
        self.tasks[task.id] = task
        return task

    def mark_done(self, task_id: int) -> Task:
        if task_id not in self.tasks:
            raise TaskNotFoundError(task_id)
        self.tasks[task_id].done = True
        return self.tasks[task_id]


@pytest.fixture
def client() -> Iterator[TestClient]:
    container = AppContainer()
    container.task_repository.override(providers.Object(InMemoryTasks()))
    yield TestClient(create_api())
    container.unwire()


def test_create_list_and_complete(client: TestClient) -> None:
    assert client.post("/tasks", json={"title": "buy milk"}).status_code == 201
    assert client.post("/tasks/1/done").json() == {"id": 1, "title": "buy milk", "done": True}
    assert client.get("/tasks").json() == [{"id": 1, "title": "buy milk", "done": True}]


def test_a_blank_title_is_refused(client: TestClient) -> None:
    assert client.post("/tasks", json={"title": "  "}).status_code == 422


def test_an_unknown_task_is_404(client: TestClient) -> None:
    assert client.post("/tasks/7/done").status_code == 404
