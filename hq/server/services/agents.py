"""Agents: registration, listing, drain; the claim itself is ``services.claims``."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.agents import AgentCreate, AgentRead, AgentState
from hq.schemas.common import JobStatus
from hq.server.db.models import Agent, Job
from hq.server.db.types import utcnow
from hq.server.services import submissions


async def register(
    session: AsyncSession, *, body: AgentCreate, token_id: str, offline_seconds: float
) -> AgentRead:
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
    agents = await submissions.live_agents(session, offline_seconds=offline_seconds)
    for job in waiting:
        job.unschedulable_reason = submissions.unschedulable_reason(
            agents=agents, labels=job.labels, gpus=job.gpus, queue_name=job.queue
        )
    await session.flush()
    return _read(agent, running=0, offline_seconds=offline_seconds)


async def get_agent(
    session: AsyncSession, *, agent_id: str, token_id: str | None, for_update: bool = False
) -> Agent:
    """The agent's row (for services); ``token_id`` (None for admins) must be the token that
    registered it."""
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
    return [_read(a, running=running.get(a.id, 0), offline_seconds=offline_seconds) for a in rows]


def _read(agent: Agent, *, running: int, offline_seconds: float) -> AgentRead:
    """The row, with what is derived: its status (from when it was last seen) and how many
    jobs it runs."""
    status = _status(agent, offline_seconds=offline_seconds)
    return AgentRead.from_row(agent, status=status, running=running)


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
    return _read(agent, running=running, offline_seconds=offline_seconds)


async def report_state(
    session: AsyncSession, *, agent_id: str, token_id: str | None, state: AgentState
) -> None:
    """A free-host agent's state (why it takes no work, jobs paused); it counts as seen."""
    agent = await get_agent(session, agent_id=agent_id, token_id=token_id)
    await session.execute(
        update(Agent)
        .where(Agent.id == agent.id)
        .values(not_free=state.not_free, paused=state.paused, last_seen_at=utcnow())
    )


async def report_warm(
    session: AsyncSession, *, agent_id: str, token_id: str | None, waiting: dict[str, int]
) -> None:
    """The agent's warm containers per script, as it counts them now."""
    agent = await get_agent(session, agent_id=agent_id, token_id=token_id)
    await session.execute(
        update(Agent).where(Agent.id == agent.id).values(warm=dict(sorted(waiting.items())))
    )
