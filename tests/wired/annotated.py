"""The ``Annotated`` form: the marker in the parameter's metadata, also inside ``Depends``.

No ``from __future__ import annotations`` here: dependency-injector reads annotations as objects.
"""

from typing import Annotated

from dependency_injector.wiring import Provide, inject
from fastapi import Depends

from tests.wired.containers import Base, Cache, Repo

cache_of_module: Annotated[Cache, Provide[Base.cache]]


@inject
def handler(repo: Annotated[Repo, Depends(Provide[Base.repo])]) -> bool:
    return repo.ready()
