"""Data access: one short session per operation, from the database service's sessionmaker."""

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from todo.models import Task


class TaskNotFoundError(LookupError):
    def __init__(self, task_id: int) -> None:
        super().__init__(f"no task {task_id}")
        self.task_id = task_id


class TaskRepository:
    def __init__(self, sessions: Callable[[], Session]) -> None:
        self.sessions = sessions

    def all(self) -> list[Task]:
        with self.sessions() as session:
            return list(session.scalars(select(Task).order_by(Task.id)))

    def get(self, task_id: int) -> Task:
        with self.sessions() as session:
            task = session.get(Task, task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            return task

    def add(self, title: str) -> Task:
        with self.sessions() as session, session.begin():
            task = Task(title=title)
            session.add(task)
        return task

    def mark_done(self, task_id: int) -> Task:
        with self.sessions() as session, session.begin():
            task = session.get(Task, task_id)
            if task is None:
                raise TaskNotFoundError(task_id)
            task.done = True
        return task
