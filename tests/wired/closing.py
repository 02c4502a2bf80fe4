"""``Closing[Provide[...]]``: a resource opened per call, closed after it."""

from __future__ import annotations

from dependency_injector.wiring import Closing, Provide, inject

from tests.wired.containers import Base


@inject
def with_session(session: str = Closing[Provide[Base.session]]) -> str:
    return session
