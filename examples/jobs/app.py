"""A job queue on PostgreSQL: `POST /jobs` enqueues, consumers claim with `FOR UPDATE SKIP LOCKED`.

Run it from `examples/jobs/` against a PostgreSQL server (`database.url` in config/default.toml,
or `APP_DATABASE__URL`):

    framework run app:App --workers 4
    curl -X POST localhost:8000/jobs -H 'content-type: application/json' -d '{"payload": {"n": 7}}'
    curl localhost:8000/jobs                 # {"queued": ..., "done": ...}
    kill -HUP <supervisor pid>               # rolling restart: no job lost, none done twice

Each consumer's `run()` takes one job at a time, in one transaction: claim the row (locked, and
skipped by the other consumers), do the work, record its effect and mark the job done, commit.
From the first moment of shutdown (`self.stopping`) it claims no new job and finishes the one in
hand. A job cut off by a crash or a cold cancellation is rolled back by PostgreSQL and claimed
again later; its effect is keyed by the job's id, so it is never applied twice.
docs/howto/jobs.md explains the pattern.
"""

from __future__ import annotations

import json
import os
from typing import Any

import anyio
from dependency_injector import containers, providers
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from framework import Application, Service, Settings
from framework.services import DatabaseService, HttpService

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS jobs (
        id          bigserial PRIMARY KEY,
        payload     jsonb NOT NULL,
        created_at  timestamptz NOT NULL DEFAULT now(),
        done_at     timestamptz,             -- NULL: still to do
        done_count  integer NOT NULL DEFAULT 0,  -- committed executions: 1 when all is well
        done_by     integer                  -- the process that did it
    )""",
    "CREATE INDEX IF NOT EXISTS jobs_to_do ON jobs (id) WHERE done_at IS NULL",
    """CREATE TABLE IF NOT EXISTS job_effects (
        job_id  bigint PRIMARY KEY REFERENCES jobs (id),  -- the effect is keyed by the job
        result  text NOT NULL
    )""",
]

ENQUEUE = text("INSERT INTO jobs (payload) VALUES (CAST(:payload AS jsonb)) RETURNING id")
# The oldest job nobody holds: rows locked by another consumer's transaction are skipped.
CLAIM = text(
    "SELECT id, payload FROM jobs WHERE done_at IS NULL ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
)
# Applying an effect twice is a no-op: the job's id is its idempotency key.
EFFECT = text(
    "INSERT INTO job_effects (job_id, result) VALUES (:id, :result) ON CONFLICT (job_id) DO NOTHING"
)
DONE = text(
    "UPDATE jobs SET done_at = now(), done_count = done_count + 1, done_by = :pid WHERE id = :id"
)
COUNTS = text("SELECT count(*) FILTER (WHERE done_at IS NULL), count(done_at) FROM jobs")


class JobsSettings(BaseModel):
    """Settings section ``jobs``."""

    model_config = ConfigDict(extra="forbid")

    work_seconds: float = Field(0.005, ge=0, description="How long one job's work takes.")
    poll_interval: float = Field(0.5, gt=0, description="Seconds between looks at an empty queue.")


class JobsAppSettings(Settings):
    jobs: JobsSettings = Field(default_factory=JobsSettings)


class JobsDatabase(DatabaseService):
    """The built-in database service; creates the tables on start (once, whichever worker is
    first: the advisory lock serialises the workers that start together)."""

    async def start(self) -> None:
        await super().start()
        async with self.engine.begin() as connection:
            await connection.execute(text("SELECT pg_advisory_xact_lock(4242)"))
            for statement in SCHEMA:
                await connection.execute(text(statement))


class JobQueue:
    """The queue's three operations; using it makes a service depend on the database."""

    def __init__(self, db: DatabaseService) -> None:
        self.db = db

    async def enqueue(self, payload: dict[str, Any]) -> int:
        async with self.db.engine.begin() as connection:
            result = await connection.execute(ENQUEUE, {"payload": json.dumps(payload)})
            return int(result.scalar_one())

    async def counts(self) -> dict[str, int]:
        async with self.db.engine.connect() as connection:
            queued, done = (await connection.execute(COUNTS)).one()
        return {"queued": queued, "done": done}

    async def work_one(self, settings: JobsSettings) -> bool:
        """Claim one job, do it, mark it done: one transaction. False when none is waiting."""
        async with self.db.engine.begin() as connection:  # commits on exit, rolls back on error
            job = (await connection.execute(CLAIM)).first()
            if job is None:
                return False
            result = await do_the_work(job.payload, settings)
            await record(connection, job.id, result)
        return True


async def do_the_work(payload: dict[str, Any], settings: JobsSettings) -> str:
    """The job itself: a few milliseconds here; an email, a thumbnail, a call elsewhere."""
    await anyio.sleep(settings.work_seconds)
    return f"{len(payload)} field(s)"


async def record(connection: AsyncConnection, job_id: int, result: str) -> None:
    await connection.execute(EFFECT, {"id": job_id, "result": result})
    await connection.execute(DONE, {"id": job_id, "pid": os.getpid()})


class Consumer(Service):
    """Takes jobs one at a time until shutdown begins; then finishes the one in hand (warm)."""

    def __init__(self, queue: JobQueue, settings: JobsSettings) -> None:
        self.queue = queue
        self.settings = settings

    async def run(self) -> None:
        while not self.stopping.is_set():
            if not await self.queue.work_one(self.settings):
                # nothing to do: look again later, or return at once when shutdown begins
                with anyio.move_on_after(self.settings.poll_interval):
                    await self.stopping.wait()


class JobIn(BaseModel):
    payload: dict[str, Any] = Field(default_factory=dict)


def create_api(queue: JobQueue) -> FastAPI:
    api = FastAPI(title="jobs")

    @api.post("/jobs", status_code=201)
    async def enqueue(job: JobIn) -> dict[str, int]:
        return {"id": await queue.enqueue(job.payload)}

    @api.get("/jobs")
    async def counts() -> dict[str, int]:
        return await queue.counts()

    return api


class Container(containers.DeclarativeContainer):
    settings = providers.Dependency(instance_of=JobsAppSettings)
    db = providers.Singleton(JobsDatabase, settings=settings.provided.database)
    queue = providers.Factory(JobQueue, db=db)
    # Two consumers per process: two run() loops, each holding at most one job (one connection).
    consumer_1 = providers.Singleton(Consumer, queue=queue, settings=settings.provided.jobs)
    consumer_2 = providers.Singleton(Consumer, queue=queue, settings=settings.provided.jobs)
    http = providers.Singleton(
        HttpService,
        app=providers.Callable(create_api, queue=queue),
        settings=settings.provided.http,
    )


class App(Application):
    container_class = Container
    settings_class = JobsAppSettings


if __name__ == "__main__":
    App.main()
