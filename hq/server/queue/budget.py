"""A sweep's failure budget: once more of its jobs than ``max_failures`` have failed, the jobs
that have not started are cancelled (running ones finish)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq.schemas.common import JobStatus
from hq.server.db.models import Job, Sweep
from hq.server.queue.lease import finish

FAILED = (JobStatus.failed.value, JobStatus.timed_out.value)


async def enforce_sweep_budgets(session: AsyncSession, *, sweep_ids: Iterable[str | None]) -> int:
    """Cancel the queued jobs of each sweep past its failure budget; how many were cancelled."""
    cancelled = 0
    for sweep_id in sorted({s for s in sweep_ids if s is not None}):
        cancelled += await _enforce(session, sweep_id=sweep_id)
    return cancelled


async def _enforce(session: AsyncSession, *, sweep_id: str) -> int:
    spec = await session.scalar(select(Sweep.spec).where(Sweep.id == sweep_id))
    limit = (spec or {}).get("max_failures")
    if limit is None:
        return 0
    failed = await session.scalar(
        select(func.count()).where(Job.sweep_id == sweep_id, Job.status.in_(FAILED))
    )
    if (failed or 0) <= limit:
        return 0
    waiting = (
        await session.scalars(
            select(Job)
            .where(Job.sweep_id == sweep_id, Job.status == JobStatus.queued.value)
            .order_by(Job.id)
            .with_for_update(skip_locked=True)
        )
    ).all()
    reason = (
        f"cancelled: the sweep's failure budget was exceeded "
        f"({failed} failed, max_failures {limit})"
    )
    for job in waiting:
        await finish(session, job=job, status=JobStatus.cancelled, reason=reason, flush=False)
    return len(waiting)
