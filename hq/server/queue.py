"""The job queue: the only home of the claim and lease SQL.

Claiming is one statement: a CTE picks up to ``capacity`` queued jobs the agent can run (queue,
labels, GPUs, ``run_after``), ordered by priority then age, ``FOR UPDATE SKIP LOCKED`` on
PostgreSQL; the UPDATE turns them into leases. On SQLite the same statement runs inside a
``BEGIN IMMEDIATE`` transaction (see ``db/session.py``), which makes it the only writer.

Lease fencing: every claim writes a fresh random ``lease_token``; heartbeats and ``complete`` must
present it. A completed job remembers the token that completed it, so a retried ``complete`` with
that token gets the first answer instead of a 409.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import (
    ColumnElement,
    Executable,
    Integer,
    String,
    and_,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from hq import errors
from hq.schemas.common import JobStatus
from hq.server import notify
from hq.server.db.models import Agent, Job, JobEventRow, JobLabel
from hq.server.db.types import UTCDateTime, utcnow

LOST_REASON = "lost"
REAP_BATCH = 1000  # due jobs locked and settled per tick; the rest wait for the next


@dataclass(frozen=True)
class ReapResult:
    requeued: int = 0
    lost: int = 0
    timed_out: int = 0
    cancelled: int = 0


def _token_expr(dialect: str) -> ColumnElement[str]:
    if dialect == "postgresql":
        return func.replace(cast(func.gen_random_uuid(), String(36)), "-", "")
    return func.lower(func.hex(func.randomblob(16)))


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
    missing_label = exists().where(
        JobLabel.job_id == Job.id, JobLabel.label.not_in(bindparam("claim_labels", expanding=True))
    )
    draining = exists().where(Agent.id == agent_id, Agent.drain_requested.is_(True))
    picked = (
        select(Job.id)
        .where(
            Job.status == JobStatus.queued.value,
            Job.queue.in_(bindparam("claim_queues", expanding=True)),
            Job.run_after <= now,
            Job.gpus <= bindparam("claim_gpus", type_=Integer),
            ~missing_label,
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
            attempt_started_at=now,
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
    if jobs and dialect != "postgresql":
        session.add_all(
            JobEventRow(job_id=j.id, at=now, kind="started", attempt=j.attempts, agent_id=agent.id)
            for j in jobs
        )
        await session.flush()
    jobs.sort(key=lambda j: (-j.priority, j.created_at, j.id))
    return jobs


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


async def renew_lease(session: AsyncSession, *, job: Job, lease_ttl_seconds: float) -> Job:
    now = utcnow()
    job.lease_expires_at = now + timedelta(seconds=lease_ttl_seconds)
    await session.execute(update(Agent).where(Agent.id == job.agent_id).values(last_seen_at=now))
    await session.flush()
    return job


async def finish(
    session: AsyncSession,
    *,
    job: Job,
    status: JobStatus,
    reason: str | None,
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
    job.exit_code = exit_code
    job.finished_at = now
    job.completed_token = job.lease_token
    job.lease_expires_at = None
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
    await notify.mark(session, "done")
    if flush:
        await session.flush()


async def extend_running_leases(session: AsyncSession, *, grace_seconds: float) -> int:
    """After an outage of HQ or its database, give every running lease a grace period."""
    until = utcnow() + timedelta(seconds=grace_seconds)
    result = await session.execute(
        update(Job)
        .where(Job.status == JobStatus.running.value, Job.lease_expires_at < until)
        .values(lease_expires_at=until)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _overdue(
    *,
    now: datetime,
    attempt_started_at: datetime | None,
    timeout_s: int,
    lease_expires_at: datetime | None,
    slack_seconds: float,
) -> tuple[bool, bool]:
    """(past its timeout plus slack, lease expired) for a running job."""
    started = attempt_started_at or now
    timed_out = started + timedelta(seconds=timeout_s + slack_seconds) < now
    return timed_out, lease_expires_at is not None and lease_expires_at < now


async def reap(
    session: AsyncSession,
    *,
    backoff_seconds: float,
    backoff_max_seconds: float,
    timeout_slack_seconds: float,
) -> ReapResult:
    """Requeue expired leases (with backoff) or fail them as lost; backstop job timeouts.

    A scan of four columns, with no lock, finds the due jobs; only those are then locked (SKIP
    LOCKED: a job whose agent is completing it right now is left to that agent) and checked
    again. Healthy running jobs are never locked, so their heartbeats never wait on a tick."""
    now = utcnow()
    candidates = await session.execute(
        select(Job.id, Job.attempt_started_at, Job.timeout_s, Job.lease_expires_at).where(
            Job.status == JobStatus.running.value
        )
    )
    due = [
        job_id
        for job_id, started, timeout_s, expires in candidates
        if any(
            _overdue(
                now=now,
                attempt_started_at=started,
                timeout_s=timeout_s,
                lease_expires_at=expires,
                slack_seconds=timeout_slack_seconds,
            )
        )
    ][:REAP_BATCH]
    if not due:
        return ReapResult()
    running = (
        await session.scalars(
            select(Job)
            .where(Job.id.in_(due), Job.status == JobStatus.running.value)
            .with_for_update(skip_locked=True)
            .execution_options(populate_existing=True)
        )
    ).all()
    requeued = lost = timed_out = cancelled = 0
    for job in running:
        timed_out_now, lease_expired = _overdue(
            now=now,
            attempt_started_at=job.attempt_started_at,
            timeout_s=job.timeout_s,
            lease_expires_at=job.lease_expires_at,
            slack_seconds=timeout_slack_seconds,
        )
        if timed_out_now:
            await finish(
                session,
                job=job,
                status=JobStatus.timed_out,
                reason="timeout (enforced by HQ: the agent did not report)",
            )
            timed_out += 1
        elif lease_expired:
            if job.cancel_requested:
                await finish(
                    session,
                    job=job,
                    status=JobStatus.cancelled,
                    reason="cancelled (its agent stopped reporting)",
                    detail="its agent stopped reporting",
                )
                cancelled += 1
            elif job.attempts >= job.max_attempts:
                await finish(
                    session,
                    job=job,
                    status=JobStatus.failed,
                    reason=LOST_REASON,
                    detail=f"lease expired on attempt {job.attempts} of {job.max_attempts}",
                )
                lost += 1
            else:
                delay = min(backoff_seconds * 2 ** (job.attempts - 1), backoff_max_seconds)
                session.add(
                    JobEventRow(
                        job_id=job.id,
                        at=now,
                        kind="requeued",
                        attempt=job.attempts,
                        agent_id=job.agent_id,
                        detail=f"lease expired; retry in {delay:g} s",
                    )
                )
                job.status = JobStatus.queued.value
                job.lease_token = None
                job.lease_expires_at = None
                job.agent_id = None
                job.run_after = now + timedelta(seconds=delay)
                requeued += 1
    await session.flush()
    return ReapResult(requeued=requeued, lost=lost, timed_out=timed_out, cancelled=cancelled)


async def due_since(session: AsyncSession, *, since: datetime) -> bool:
    """Whether a requeued job became claimable (its backoff ended) after ``since``. A new job
    is not asked about: its submission already woke a claim."""
    now = utcnow()
    found = await session.scalar(
        select(Job.id)
        .where(
            and_(
                Job.status == JobStatus.queued.value,
                Job.attempts > 0,
                Job.run_after > since,
                Job.run_after <= now,
            )
        )
        .limit(1)
    )
    return found is not None


def new_job_id() -> str:
    return str(uuid.uuid4())
