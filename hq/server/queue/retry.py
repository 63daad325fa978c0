"""The end of a failed attempt: a retry (back to the queue, after a backoff) or the job's end.

Infrastructure failures are retried within ``max_attempts``, counting only the attempts that were
not script retries; the script's own failures only when the job lists their kind in
``retry_on``, at most ``max_retries`` times (``hq.schemas.retries``). Every attempt's end is an
event with its reason, so the job's timeline says why each attempt ended.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from hq.schemas.common import JobStatus
from hq.schemas.retries import SCRIPT_KINDS, is_infrastructure
from hq.server.db.models import Job, JobEventRow
from hq.server.db.types import utcnow
from hq.server.queue.lease import finish

RetryClass = Literal["infrastructure", "script"]


@dataclass(frozen=True)
class Backoff:
    """How long a requeued job waits: doubling per attempt from ``seconds``, at most
    ``max_seconds``."""

    seconds: float = 2.0
    max_seconds: float = 300.0

    def delay(self, attempts: int) -> float:
        return min(self.seconds * 2.0 ** (max(attempts, 1) - 1), self.max_seconds)


def infrastructure_budget_left(job: Job) -> bool:
    """Whether another attempt fits ``max_attempts`` (script retries do not count)."""
    return job.attempts - (job.script_retries or 0) < job.max_attempts


def retry_class(job: Job, *, status: JobStatus, kind: str | None) -> RetryClass | None:
    """Which budget retries this failed attempt, or None when the job ends with it."""
    if status not in (JobStatus.failed, JobStatus.timed_out):
        return None
    if is_infrastructure(kind):
        return "infrastructure" if infrastructure_budget_left(job) else None
    if kind in SCRIPT_KINDS and kind in (job.retry_on or []):
        return "script" if (job.script_retries or 0) < job.max_retries else None
    return None


def requeue(
    session: AsyncSession, *, job: Job, now: datetime, delay: float, detail: str, replayable: bool
) -> None:
    """Back to the queue, claimable again after ``delay`` seconds. ``replayable``: the lease
    holder reported this end, so the same report again gets the first answer (a lost lease's
    holder gets 409 instead)."""
    session.add(
        JobEventRow(
            job_id=job.id,
            at=now,
            kind="requeued",
            attempt=job.attempts,
            agent_id=job.agent_id,
            detail=detail,
        )
    )
    if replayable:
        job.completed_token = job.lease_token
    job.status = JobStatus.queued.value
    job.lease_token = None
    job.lease_expires_at = None
    job.deadline_at = None
    job.agent_id = None
    job.run_after = now + timedelta(seconds=delay)


async def end_attempt(
    session: AsyncSession,
    *,
    job: Job,
    status: JobStatus,
    kind: str | None,
    reason: str | None,
    exit_code: int | None,
    backoff: Backoff,
    replayable: bool,
) -> bool:
    """Retry or finish a job whose attempt ended with ``status``; True when it was requeued."""
    which = retry_class(job, status=status, kind=kind)
    if which is None:
        await finish(
            session,
            job=job,
            status=status,
            reason=reason,
            kind=kind if status is not JobStatus.succeeded else None,
            exit_code=exit_code,
            flush=False,
        )
        return False
    if which == "script":
        job.script_retries = (job.script_retries or 0) + 1
    delay = backoff.delay(job.attempts - (job.script_retries or 0) or 1)
    job.failure_kind = kind
    job.failure_reason = reason
    job.exit_code = exit_code
    detail = (
        f"attempt {job.attempts} {status.value} ({reason or kind}); {which} failure, "
        f"retry in {delay:g} s"
    )
    requeue(session, job=job, now=utcnow(), delay=delay, detail=detail, replayable=replayable)
    return True
