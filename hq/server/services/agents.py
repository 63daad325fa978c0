"""Agents: registration, listing, drain, and turning claimed jobs into leases."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.agents import AgentCreate, AgentRead, InputDownload, Lease
from hq.schemas.common import JobStatus
from hq.schemas.manifest import Manifest
from hq.server.db.models import Agent, Job
from hq.server.db.types import utcnow
from hq.server.services import jobs as job_service
from hq.server.storage import ObjectStore, dataset_key

INPUT_URL_EXPIRY_SECONDS = 900


async def register(
    session: AsyncSession, *, body: AgentCreate, token_id: str, offline_seconds: float
) -> Agent:
    agent = Agent(
        id=str(uuid.uuid4()),
        name=body.name,
        labels=sorted(set(body.labels)),
        capacity=body.capacity,
        gpus=body.gpus,
        queues=body.queues,
        token_id=token_id,
        last_seen_at=utcnow(),
    )
    session.add(agent)
    await session.flush()
    # Jobs that waited for an agent like this one are schedulable now.
    waiting = (
        await session.scalars(
            select(Job).where(
                Job.status == JobStatus.queued.value, Job.unschedulable_reason.is_not(None)
            )
        )
    ).all()
    agents = await job_service.live_agents(session, offline_seconds=offline_seconds)
    for job in waiting:
        job.unschedulable_reason = job_service.unschedulable_reason(
            agents=agents, labels=job.labels, gpus=job.gpus, queue_name=job.queue
        )
    await session.flush()
    return agent


async def get_agent(
    session: AsyncSession, *, agent_id: str, token_id: str | None, for_update: bool = False
) -> Agent:
    """The agent; ``token_id`` (None for admins) must be the token that registered it."""
    stmt = select(Agent).where(Agent.id == agent_id)
    agent = await session.scalar(stmt.with_for_update() if for_update else stmt)
    if agent is None:
        raise errors.NotFound(f"agent {agent_id} not found; register with POST /api/v1/agents")
    if token_id is not None and agent.token_id != token_id:
        raise errors.Forbidden(f"agent {agent_id} was registered with another token")
    return agent


async def touch(session: AsyncSession, *, agent: Agent, fresh_seconds: float = 0.0) -> None:
    """Mark the agent seen now, unless it was seen in the last ``fresh_seconds`` (a claim passes
    a small part of the offline threshold: it spares a write, a round trip, on every claim)."""
    now = utcnow()
    if fresh_seconds > 0 and now - agent.last_seen_at < timedelta(seconds=fresh_seconds):
        return
    await session.execute(update(Agent).where(Agent.id == agent.id).values(last_seen_at=now))


def _status(agent: Agent, *, offline_seconds: float) -> str:
    if agent.last_seen_at < utcnow() - timedelta(seconds=offline_seconds):
        return "offline"
    return "draining" if agent.drain_requested else "active"


async def list_agents(session: AsyncSession, *, offline_seconds: float) -> list[AgentRead]:
    running = dict(
        (
            await session.execute(
                select(Job.agent_id, func.count())
                .where(Job.status == JobStatus.running.value)
                .group_by(Job.agent_id)
            )
        ).all()
    )
    rows = (await session.scalars(select(Agent).order_by(Agent.created_at))).all()
    return [to_read(a, running=running.get(a.id, 0), offline_seconds=offline_seconds) for a in rows]


def to_read(agent: Agent, *, running: int, offline_seconds: float) -> AgentRead:
    return AgentRead(
        id=agent.id,
        name=agent.name,
        labels=agent.labels,
        capacity=agent.capacity,
        gpus=agent.gpus,
        queues=agent.queues,
        status=_status(agent, offline_seconds=offline_seconds),
        running=running,
        drain_requested=agent.drain_requested,
        last_seen_at=agent.last_seen_at,
        created_at=agent.created_at,
    )


async def drain(session: AsyncSession, *, agent_id: str, offline_seconds: float) -> AgentRead:
    agent = await get_agent(session, agent_id=agent_id, token_id=None, for_update=True)
    agent.drain_requested = True
    await session.flush()
    running = (
        await session.scalar(
            select(func.count()).where(
                Job.agent_id == agent.id, Job.status == JobStatus.running.value
            )
        )
        or 0
    )
    return to_read(agent, running=running, offline_seconds=offline_seconds)


async def to_lease(job: Job, *, store: ObjectStore) -> Lease:
    """A claimed job as the agent needs it, inputs as short-lived presigned URLs."""
    downloads = [
        InputDownload(
            name=name,
            filename=ref["filename"],
            sha256=ref["sha256"],
            size=ref["size"],
            url=await store.presign_get(
                dataset_key(ref["sha256"]), expires_s=INPUT_URL_EXPIRY_SECONDS
            ),
        )
        for name, ref in job.inputs.items()
    ]
    assert job.lease_token is not None and job.lease_expires_at is not None
    return Lease(
        job_id=job.id,
        lease_token=job.lease_token,
        attempt=job.attempts,
        lease_expires_at=job.lease_expires_at,
        image=job.image,
        digest=job.digest,
        manifest=Manifest.model_validate(job.manifest),
        params=job.params,
        inputs=downloads,
        timeout_s=job.timeout_s,
    )
