"""``GET /metrics``: the gauges read from the database, then the registry in Prometheus' text."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq.schemas.common import JobStatus
from hq.server.db.models import Job
from hq.server.metrics import Metrics
from hq.server.services import agents as agent_service


async def render(session: AsyncSession, *, metrics: Metrics, offline_seconds: float) -> bytes:
    """Queue depth (jobs queued and running, by queue) and agents by status, with the
    counters and histograms ``metrics`` kept since the start."""
    rows = (
        await session.execute(
            select(Job.queue, Job.status, func.count())
            .where(Job.status.in_((JobStatus.queued.value, JobStatus.running.value)))
            .group_by(Job.queue, Job.status)
        )
    ).all()
    jobs = {(queue_name, status): count for queue_name, status, count in rows}
    agents = await agent_service.list_agents(session, offline_seconds=offline_seconds)
    return metrics.render(job_counts=jobs, agent_counts=dict(Counter(a.status for a in agents)))
