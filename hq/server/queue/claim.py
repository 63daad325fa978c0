"""The claim: one statement that turns up to ``capacity`` queued jobs into leases."""

from __future__ import annotations

import functools
from datetime import timedelta

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    String,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from hq.schemas.common import JobStatus
from hq.server.db.models import Agent, Job, JobEventRow, JobLabel
from hq.server.db.types import UTCDateTime, utcnow
from hq.server.queue.deadline import deadline


def _token_expr(dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.replace(cast(func.gen_random_uuid(), String(36)), "-", "")
    return func.lower(func.hex(func.randomblob(16)))


def _labels_ok(dialect: str) -> ColumnElement[bool]:
    """The job needs no label the agent lacks (``claim_labels``, the agent's labels)."""
    if dialect == "postgresql":
        # jsonb containment on the row the index scan is at: the anti-join over job_labels that
        # SQLite uses here is planned as a full scan of that table on PostgreSQL (6 ms a claim
        # at a million jobs, where it was nothing at ten thousand).
        return Job.labels.op("<@")(bindparam("claim_labels", type_=JSONB))
    return ~exists().where(
        JobLabel.job_id == Job.id,
        JobLabel.label.not_in(bindparam("claim_labels", expanding=True)),
    )


@functools.cache
def _claim_statement(dialect: str) -> Executable:
    """The claim, built once per dialect (building it costs more than running it); per-call
    values are bound parameters named ``claim_*`` (an ORM UPDATE would take a parameter named
    like a column, ``labels`` say, as a value to SET).

    On PostgreSQL the 'started' events are written by the same statement (the UPDATE and the
    INSERT are data-modifying CTEs): one round trip per claim. SQLite has no DML in CTEs, so the
    events are a second statement there (``claim_jobs``)."""
    now = bindparam("claim_now", type_=UTCDateTime)
    agent_id = bindparam("claim_agent_id", type_=String)
    labels_ok = _labels_ok(dialect)
    draining = exists().where(Agent.id == agent_id, Agent.drain_requested.is_(True))
    picked = (
        select(Job.id)
        .where(
            Job.status == JobStatus.queued.value,
            Job.queue.in_(bindparam("claim_queues", expanding=True)),
            Job.run_after <= now,
            Job.gpus <= bindparam("claim_gpus", type_=Integer),
            labels_ok,
            ~draining,  # a drain requested while the claim waited: hand out nothing
        )
        .order_by(Job.priority.desc(), Job.created_at, Job.id)
        .limit(bindparam("claim_capacity", type_=Integer))
        .with_for_update(skip_locked=True)
        .cte("picked")
    )
    claimed = (
        update(Job)
        .where(Job.id.in_(select(picked.c.id)))
        .values(
            status=JobStatus.running.value,
            attempts=Job.attempts + 1,
            lease_token=_token_expr(dialect),
            lease_expires_at=bindparam("claim_expires", type_=UTCDateTime),
            deadline_at=deadline(
                dialect, now=now, expires=bindparam("claim_expires", type_=UTCDateTime)
            ),
            attempt_started_at=now,
            paused_s=0,
            started_at=func.coalesce(Job.started_at, now),
            agent_id=agent_id,
            unschedulable_reason=None,
        )
        .returning(Job)
    )
    if dialect != "postgresql":
        return claimed.execution_options(synchronize_session=False)
    claimed_cte = claimed.cte("claimed")
    started = insert(JobEventRow).from_select(
        ["job_id", "at", "kind", "attempt", "agent_id"],
        select(claimed_cte.c.id, now, literal("started"), claimed_cte.c.attempts, agent_id),
    )
    leased = aliased(Job, claimed_cte)
    return select(leased).add_cte(started.cte("started")).execution_options(populate_existing=True)


async def claim_jobs(
    session: AsyncSession, *, agent: Agent, capacity: int, lease_ttl_seconds: float
) -> list[Job]:
    """Lease up to ``capacity`` jobs to ``agent``; flushes, the caller commits."""
    assert session.bind is not None
    dialect = session.bind.dialect.name
    now = utcnow()
    params = {
        "claim_agent_id": agent.id,
        "claim_queues": agent.queues,
        "claim_labels": agent.labels,
        "claim_gpus": agent.gpus,
        "claim_capacity": capacity,
        "claim_now": now,
        "claim_expires": now + timedelta(seconds=lease_ttl_seconds),
    }
    jobs = list((await session.scalars(_claim_statement(dialect), params)).all())
    if jobs and dialect != "postgresql":  # one executemany, not an ORM flush of each row
        await session.execute(
            insert(JobEventRow),
            [
                {"job_id": j.id, "at": now, "kind": "started", "attempt": j.attempts}
                | {"agent_id": agent.id}
                for j in jobs
            ],
        )
    jobs.sort(key=lambda j: (-j.priority, j.created_at, j.id))
    return jobs
