"""The FastAPI example (``examples/fastapi``) written without the framework, served by bare uvicorn.

The canonical FastAPI + dependency-injector app: settings from pydantic-settings (``TODO_DATABASE_URL``),
a ``DeclarativeContainer`` holding the SQLAlchemy engine, its sessionmaker, the repository and the
service, endpoints that take the service with ``Depends(Provide[...])`` and ``@inject``, the container
wired to this module, and a lifespan that creates the schema. It reuses the example's models,
repository and service (they do not import the framework); the endpoints are the example's, against
this container. A baseline for the time to ready: the same libraries, the same work, no framework.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

import anyio
from dependency_injector import containers, providers
from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends, FastAPI, HTTPException, status
from pydantic import BaseModel, ConfigDict
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker
from todo.models import Base
from todo.repositories import TaskNotFoundError, TaskRepository
from todo.services import TaskService


class TodoSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TODO_")

    database_url: str = "sqlite:///./todo.db"


class Container(containers.DeclarativeContainer):
    wiring_config = containers.WiringConfiguration(modules=[__name__])

    settings = providers.Singleton(TodoSettings)
    engine = providers.Singleton(create_engine, settings.provided.database_url)
    sessions = providers.Singleton(sessionmaker, bind=engine, expire_on_commit=False)
    task_repository = providers.Factory(TaskRepository, sessions=sessions)
    task_service = providers.Factory(TaskService, repository=task_repository)


router = APIRouter()
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
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(error)) from None


@router.post("/tasks/{task_id}/done", response_model=TaskOut)
@inject
def complete_task(task_id: int, tasks: Tasks) -> TaskOut:
    try:
        return TaskOut.model_validate(tasks.complete(task_id))
    except TaskNotFoundError as error:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(error)) from None


container = Container()


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = container.engine()
    await anyio.to_thread.run_sync(Base.metadata.create_all, engine)
    yield
    engine.dispose()


app = FastAPI(title="todo", lifespan=lifespan)
app.include_router(router)
