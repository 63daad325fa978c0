"""Reaping: requeue expired leases (with backoff) or fail them as lost; backstop timeouts."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hq.schemas.common import JobStatus
from hq.server.db.models import Job
from hq.server.db.types import utcnow
from hq.server.queue.budget import enforce_sweep_budgets
from hq.server.queue.lease import finish
from hq.server.queue.retry import Backoff, end_attempt, infrastructure_budget_left, requeue

LOST_REASON = "lost"
REAP_BATCH = 1000  # due jobs locked and settled per tick; the rest wait for the next

Outcome = Literal["requeued", "lost", "timed_out", "cancelled"]


@dataclass(frozen=True)
class ReapResult:
    requeued: int = 0
    lost: int = 0
    timed_out: int = 0
    cancelled: int = 0


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
    paused_s: int = 0,
) -> tuple[bool, bool]:
    """(past its timeout plus slack and its paused time, lease expired) for a running job."""
    started = attempt_started_at or now
    timed_out = started + timedelta(seconds=timeout_s + (paused_s or 0) + slack_seconds) < now
    return timed_out, lease_expires_at is not None and lease_expires_at < now


async def reap(
    session: AsyncSession,
    *,
    backoff_seconds: float,
    backoff_max_seconds: float,
    timeout_slack_seconds: float,
) -> ReapResult:
    """Requeue expired leases (with backoff) or fail them as lost; backstop job timeouts.

    A range scan of the deadline index, with no lock, finds the due jobs; only those are then
    locked (SKIP LOCKED: a job whose agent is completing it right now is left to that agent)
    and checked again. Healthy running jobs are never locked, so their heartbeats never wait
    on a tick."""
    now = utcnow()
    due = await _due_ids(session, now=now, slack_seconds=timeout_slack_seconds)
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
    backoff = Backoff(seconds=backoff_seconds, max_seconds=backoff_max_seconds)
    outcomes: Counter[str] = Counter()
    for job in running:
        outcome = await _settle(
            session, job=job, now=now, backoff=backoff, slack_seconds=timeout_slack_seconds
        )
        if outcome is not None:
            outcomes[outcome] += 1
    await session.flush()
    ended = [
        job.sweep_id
        for job in running
        if job.status in (JobStatus.failed.value, JobStatus.timed_out.value)
    ]
    await enforce_sweep_budgets(session, sweep_ids=ended)
    await session.flush()
    return ReapResult(**outcomes)


async def _due_ids(session: AsyncSession, *, now: datetime, slack_seconds: float) -> list[str]:
    """Running jobs past their timeout or lease, found with no lock (at most ``REAP_BATCH``):
    an index range over ``deadline_at`` (ix_jobs_deadline) gives the candidates, however many
    jobs run or have ever run; each is then checked as before."""
    candidates = await session.execute(
        select(Job.id, Job.attempt_started_at, Job.timeout_s, Job.lease_expires_at, Job.paused_s)
        .where(Job.deadline_at < now, Job.status == JobStatus.running.value)
        .order_by(Job.deadline_at)
    )
    return [
        job_id
        for job_id, started, timeout_s, expires, paused_s in candidates
        if any(
            _overdue(
                now=now,
                attempt_started_at=started,
                timeout_s=timeout_s,
                lease_expires_at=expires,
                slack_seconds=slack_seconds,
                paused_s=paused_s,
            )
        )
    ][:REAP_BATCH]


async def _settle(
    session: AsyncSession, *, job: Job, now: datetime, backoff: Backoff, slack_seconds: float
) -> Outcome | None:
    """End or requeue one locked running job that is overdue (None: it no longer is)."""
    timed_out, lease_expired = _overdue(
        now=now,
        attempt_started_at=job.attempt_started_at,
        timeout_s=job.timeout_s,
        lease_expires_at=job.lease_expires_at,
        slack_seconds=slack_seconds,
        paused_s=job.paused_s,
    )
    if timed_out:
        reason = "timeout (enforced by HQ: the agent did not report)"
        retried = await end_attempt(
            session,
            job=job,
            status=JobStatus.timed_out,
            kind="timeout",
            reason=reason,
            exit_code=None,
            backoff=backoff,
            replayable=False,
        )
        return "requeued" if retried else "timed_out"
    if not lease_expired:
        return None
    if job.cancel_requested:
        await finish(
            session,
            job=job,
            status=JobStatus.cancelled,
            reason="cancelled (its agent stopped reporting)",
            detail="its agent stopped reporting",
        )
        return "cancelled"
    if not infrastructure_budget_left(job):
        await finish(
            session,
            job=job,
            status=JobStatus.failed,
            reason=LOST_REASON,
            kind=LOST_REASON,
            detail=f"lease expired on attempt {job.attempts} of {job.max_attempts}",
        )
        return "lost"
    delay = backoff.delay(job.attempts - (job.script_retries or 0))
    detail = (
        f"attempt {job.attempts} lost (lease expired); infrastructure failure, retry in {delay:g} s"
    )
    requeue(session, job=job, now=now, delay=delay, detail=detail, replayable=False)
    return "requeued"


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
