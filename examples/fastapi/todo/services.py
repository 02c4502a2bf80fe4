"""Business rules, on top of the repository."""

from todo.models import Task
from todo.repositories import TaskRepository


class TaskService:
    def __init__(self, repository: TaskRepository) -> None:
        self.repository = repository

    def list_tasks(self) -> list[Task]:
        return self.repository.all()

    def create(self, title: str) -> Task:
        title = title.strip()
        if not title:
            raise ValueError("a task needs a title")
        return self.repository.add(title)

    def complete(self, task_id: int) -> Task:
        return self.repository.mark_done(task_id)
