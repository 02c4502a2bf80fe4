"""The HTTP API: plain `def` endpoints (FastAPI runs them in threads), services injected."""

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, HTTPException, status
from pydantic import BaseModel, ConfigDict

from todo.containers import Container
from todo.repositories import TaskNotFoundError
from todo.services import TaskService

router = APIRouter()

# The injected service, as FastAPI recommends declaring dependencies: Annotated[type, Depends(...)].
# (No `from __future__ import annotations` in this module: dependency-injector reads the
# annotations as objects.)
Tasks = Annotated[TaskService, Depends(Provide[Container.task_service])]


class TaskIn(BaseModel):
    title: str


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    done: bool


@router.get("/tasks", response_model=list[TaskOut])
@inject
def list_tasks(tasks: Tasks) -> list[TaskOut]:
    return [TaskOut.model_validate(task) for task in tasks.list_tasks()]


@router.post("/tasks", response_model=TaskOut, status_code=status.HTTP_201_CREATED)
@inject
def create_task(body: TaskIn, tasks: Tasks) -> TaskOut:
    try:
        return TaskOut.model_validate(tasks.create(body.title))
    except ValueError as error:
        raise HTTPException(422, str(error)) from None


@router.post("/tasks/{task_id}/done", response_model=TaskOut)
@inject
def complete_task(task_id: int, tasks: Tasks) -> TaskOut:
    try:
        return TaskOut.model_validate(tasks.complete(task_id))
    except TaskNotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None
