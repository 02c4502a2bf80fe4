"""A request answered ``503`` by the HTTP drain must not commit its work afterwards.

An async endpoint cut off at the drain bound is cancelled, and its transaction is rolled back
with it. A synchronous endpoint runs in a worker thread, which cannot be cancelled: it may go on
and commit after the client was told 503 "cut off", and a client that retries the 503 then writes
twice. So each HTTP request carries a `RequestWork` in a context variable (a worker thread runs
with a copy of the request's context, so it sees the same object); the HTTP service marks it
`cut_off` when it answers 503, and every engine of a `DatabaseService` refuses a commit made on
behalf of a request marked so: the commit raises `CutOffCommitRefused`, and the transaction is
rolled back.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from framework._engine.errors import FrameworkError

__all__ = ("CURRENT_REQUEST", "CutOffCommitRefused", "RequestWork", "refuse_cut_off_commit")


class RequestWork:
    """The work one HTTP request does; ``cut_off`` once it was answered 503 by the drain."""

    __slots__ = ("cut_off",)

    def __init__(self) -> None:
        self.cut_off = False


CURRENT_REQUEST: ContextVar[RequestWork | None] = ContextVar("framework_request", default=None)


class CutOffCommitRefused(FrameworkError):
    """A commit on behalf of a request that was already answered 503 (cut off at shutdown)."""


def refuse_cut_off_commit(connection: Any) -> None:
    """SQLAlchemy ``commit`` event listener: refuse the commit of a cut-off request's work."""
    work = CURRENT_REQUEST.get()
    if work is not None and work.cut_off:
        raise CutOffCommitRefused(
            "this request was answered 503 (cut off at the drain bound of the shutdown): its "
            "transaction is rolled back, not committed, so that a client retrying the 503 "
            "does not write twice"
        )
