"""FastAPI endpoints in the documented shape: ``@inject`` and ``Depends(Provide[Container.x])``."""

from __future__ import annotations

from dependency_injector.wiring import Provide, inject
from fastapi import APIRouter, Depends

from tests.wired.containers import Base, Repo

router = APIRouter()


@router.get("/ready")
@inject
async def ready(repo: Repo = Depends(Provide[Base.repo])) -> dict[str, bool]:
    return {"ready": repo.ready()}
