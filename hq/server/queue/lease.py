"""Leases: the fencing rule, renewal, and the end of an attempt."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import insert, null, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer
from sqlalchemy.orm.attributes import set_committed_value

from hq import errors
from hq.schemas.common import JobStatus
from hq.server import notify
from hq.server.db.models import Agent, Job, JobEventRow, JobResultRow
from hq.server.db.types import utcnow
from hq.server.queue import ends
from hq.server.queue.deadline import deadline_of


async def get_leased_job(
    session: AsyncSession,
    *,
    job_id: str,
    lease_token: str,
    agent_token_id: str | None,
    for_update: bool = False,
) -> Job:
    """The job if ``lease_token`` is its current lease, held through the caller's agent token.

    ``agent_token_id`` None means an admin, who may act for any agent.
    """
    stmt = select(Job).where(Job.id == job_id)
    if for_update:
        stmt = stmt.with_for_update()
    job = await session.scalar(stmt)
    owner = None
    if job is not None and agent_token_id is not None:
        owner = await session.scalar(select(Agent.token_id).where(Agent.id == job.agent_id))
    return check_lease(
        job,
        job_id=job_id,
        lease_token=lease_token,
        agent_token_id=agent_token_id,
        owner_token_id=owner,
    )


def check_lease(
    job: Job | None,
    *,
    job_id: str,
    lease_token: str,
    agent_token_id: str | None,
    owner_token_id: str | None,
) -> Job:
    """The fencing rule on an already loaded job: ``lease_token`` must be its current lease,
    held by the agent token ``owner_token_id`` registered with (unless an admin acts)."""
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    if job.status != JobStatus.running.value or job.lease_token != lease_token:
        raise errors.LeaseLost(
            f"lease on job {job_id} is no longer valid "
            f"(job is {job.status}, attempt {job.attempts})"
        )
    if agent_token_id is not None and owner_token_id != agent_token_id:
        raise errors.Forbidden(f"job {job_id} is leased to another agent")
    return job


@dataclass(frozen=True)
class Leases:
    """Jobs loaded by id, with the agent token each one's agent registered with."""

    jobs: dict[str, Job]
    owners: dict[str, str | None]

    def check(self, *, job_id: str, lease_token: str, agent_token_id: str | None) -> Job:
        """``check_lease`` on a job of this batch (NotFound when it was not found)."""
        job = self.jobs.get(job_id)
        return check_lease(
            job,
            job_id=job_id,
            lease_token=lease_token,
            agent_token_id=agent_token_id,
            owner_token_id=self.owners.get(job.agent_id or "") if job else None,
        )


# What ending an attempt never reads: decoding these JSON columns was a third of loading a
# batch. Reading one anyway raises, it does not quietly query again.
_NOT_FOR_ENDS = tuple(
    defer(column, raiseload=True) for column in (Job.manifest, Job.params, Job.inputs)
)


async def load_leases(
    session: AsyncSession, *, ids: Iterable[str], agent_token_id: str | None, lock: bool
) -> Leases:
    """The jobs by id, and the agent token each one's agent registered with (looked up only
    when an agent, not an admin, asks). Locked rows are taken in id order, so concurrent
    batches cannot deadlock."""
    # The owners come in the same round trip (NULL for an admin, who needs none).
    owner = Agent.token_id if agent_token_id is not None else null()
    stmt = (
        select(Job, owner)
        .options(*_NOT_FOR_ENDS)
        .outerjoin(Agent, Agent.id == Job.agent_id)
        .where(Job.id.in_(sorted(set(ids))))
        .order_by(Job.id)
    )
    if lock:
        stmt = stmt.with_for_update(of=Job)
    jobs: dict[str, Job] = {}
    owners: dict[str, str | None] = {}
    for job, token_id in (await session.execute(stmt)).all():
        jobs[job.id] = job
        if agent_token_id is not None and job.agent_id is not None:
            owners[job.agent_id] = token_id
    return Leases(jobs=jobs, owners=owners)


async def renew_lease(
    session: AsyncSession, *, job: Job, lease_ttl_seconds: float, paused_s: int = 0
) -> Job:
    """Extend the lease; ``paused_s``: the attempt's paused seconds so far, as the agent counts
    them (they only grow within an attempt)."""
    now = utcnow()
    job.lease_expires_at = now + timedelta(seconds=lease_ttl_seconds)
    job.paused_s = max(job.paused_s or 0, paused_s)
    job.deadline_at = deadline_of(job)
    await session.execute(update(Agent).where(Agent.id == job.agent_id).values(last_seen_at=now))
    await session.flush()
    return job


async def finish(
    session: AsyncSession,
    *,
    job: Job,
    status: JobStatus,
    reason: str | None,
    kind: str | None = None,
    exit_code: int | None = None,
    detail: str | None = None,
    flush: bool = True,
) -> None:
    """Move a job to a final status, remembering the token that finished it.

    ``flush=False`` leaves the writes to the commit, which sends those of many jobs together.
    """
    now = utcnow()
    job.status = status.value
    job.failure_reason = reason
    job.failure_kind = kind
    job.exit_code = exit_code
    job.finished_at = now
    job.completed_token = job.lease_token
    job.lease_expires_at = None
    job.deadline_at = None
    session.add(
        JobEventRow(
            job_id=job.id,
            at=now,
            kind=status.value,
            attempt=job.attempts,
            agent_id=job.agent_id,
            detail=detail or reason,
        )
    )
    await notify.mark(session, notify.ended(job.id))
    if flush:
        await session.flush()
    await ends.ended(session, [job])


# The finished jobs of a batch as one UPDATE on PostgreSQL, their events as one INSERT: one
# array per column, so each statement has one shape for any batch size. Executemanys of the
# same rows (psycopg's pipeline, a statement a row) were most of writing a batch's ends.
_FINISH_ALL = text(
    """
    UPDATE jobs SET status = v.status, failure_reason = v.failure_reason,
        failure_kind = v.failure_kind, exit_code = v.exit_code, finished_at = v.finished_at,
        completed_token = v.completed_token, metrics = CAST(v.metrics AS jsonb),
        lease_expires_at = NULL, deadline_at = NULL
    FROM unnest(
        CAST(:id AS varchar[]), CAST(:status AS varchar[]), CAST(:failure_reason AS text[]),
        CAST(:failure_kind AS varchar[]), CAST(:exit_code AS integer[]),
        CAST(:finished_at AS timestamptz[]), CAST(:completed_token AS varchar[]),
        CAST(:metrics AS text[])
    ) AS v(id, status, failure_reason, failure_kind, exit_code, finished_at, completed_token,
           metrics)
    WHERE jobs.id = v.id
    """
)
_FINISH_COLUMNS = (
    "id", "status", "failure_reason", "failure_kind", "exit_code", "finished_at",
    "completed_token",
)  # fmt: skip


_EVENTS_ALL = text(
    """
    INSERT INTO job_events (job_id, at, kind, attempt, agent_id, detail)
    SELECT * FROM unnest(
        CAST(:job_id AS varchar[]), CAST(:at AS timestamptz[]), CAST(:kind AS varchar[]),
        CAST(:attempt AS integer[]), CAST(:agent_id AS varchar[]), CAST(:detail AS text[])
    )
    """
)
_EVENT_COLUMNS = ("job_id", "at", "kind", "attempt", "agent_id", "detail")


def _arrays(rows: list[dict[str, Any]], columns: tuple[str, ...]) -> dict[str, list[Any]]:
    return {name: [row[name] for row in rows] for name in columns}


def _as_arrays(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    arrays = _arrays(rows, _FINISH_COLUMNS)
    arrays["metrics"] = [json.dumps(row["metrics"]) for row in rows]
    return arrays


@dataclass
class Finishes:
    """The ends of many attempts, written together: one UPDATE of the jobs and one INSERT of
    their events (statements over arrays on PostgreSQL, executemanys on SQLite), and one of
    their results, instead of the unit of work's per-object bookkeeping, which was most of a
    completed batch's CPU.

    ``add`` also puts the new values on the loaded ``Job`` objects without marking them dirty,
    so later checks in the same transaction (the same job twice in one batch is a replay) see
    them, and nothing is written twice."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    results: list[dict[str, Any]] = field(default_factory=list)
    ended: list[Job] = field(default_factory=list)

    def add(
        self,
        job: Job,
        *,
        status: JobStatus,
        reason: str | None,
        exit_code: int | None,
        kind: str | None = None,
        metrics: dict[str, int | float] | None = None,
        result: tuple[dict[str, Any], list[Any]] | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status.value,
            "failure_reason": reason,
            "failure_kind": kind if status is not JobStatus.succeeded else None,
            "exit_code": exit_code,
            "finished_at": utcnow(),
            "completed_token": job.lease_token,
            "lease_expires_at": None,
            "deadline_at": None,
            "metrics": job.metrics if metrics is None else metrics,
        }
        for key, value in values.items():
            set_committed_value(job, key, value)
        self.jobs.append({"id": job.id, **values})
        self.ended.append(job)
        self.events.append(
            {
                "job_id": job.id,
                "at": values["finished_at"],
                "kind": status.value,
                "attempt": job.attempts,
                "agent_id": job.agent_id,
                "detail": reason,
            }
        )
        if result is not None:
            tables, charts = result
            self.results.append(
                {"job_id": job.id, "attempt": job.attempts, "tables": tables, "charts": charts}
            )

    async def write(self, session: AsyncSession) -> None:
        if not self.jobs:
            return
        assert session.bind is not None
        if session.bind.dialect.name == "postgresql":
            await session.execute(_FINISH_ALL, _as_arrays(self.jobs))
            await session.execute(_EVENTS_ALL, _arrays(self.events, _EVENT_COLUMNS))
        else:  # SQLite: executemanys, in process
            await session.execute(update(Job), self.jobs)
            await session.execute(insert(JobEventRow), self.events)
        if self.results:
            await session.execute(insert(JobResultRow), self.results)
        for row in self.jobs:
            await notify.mark(session, notify.ended(row["id"]))
        await ends.ended(session, self.ended)
