"""The container: what the endpoints get injected. It knows nothing of FastAPI.

Endpoints import this module; this module imports no endpoint: no circular import. The
application (todo/application.py) adds the HTTP service, and the wiring, in a subclass.
"""

from dependency_injector import containers, providers

from framework import Settings
from framework.services import DatabaseService
from todo.repositories import TaskRepository
from todo.services import TaskService


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=Settings)  # filled by the application
    db = providers.Singleton(DatabaseService, settings=settings.provided.database)
    task_repository = providers.Factory(TaskRepository, sessions=db.provided.sessions)
    task_service = providers.Factory(TaskService, repository=task_repository)
