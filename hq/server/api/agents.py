"""Agents: register, list, drain, and the long-poll claim."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, status

from hq.schemas.agents import AgentCreate, AgentRead, ClaimRequest, ClaimResponse
from hq.schemas.common import Role
from hq.server import queue
from hq.server.auth import Principal
from hq.server.db.models import Agent
from hq.server.deps import Admin, AgentPrincipal, SessionDep, SettingsDep, Viewer
from hq.server.notify import ClaimLine, ClaimWaiter
from hq.server.services import agents as agent_service

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


def _token_scope(principal: Principal) -> str | None:
    return None if principal.role == Role.admin else principal.token_id


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgentRead)
async def register_agent(
    body: AgentCreate, session: SessionDep, settings: SettingsDep, principal: AgentPrincipal
) -> AgentRead:
    async with session.begin():
        agent = await agent_service.register(
            session,
            body=body,
            token_id=principal.token_id,
            offline_seconds=settings.agent_offline_seconds,
        )
        return agent_service.to_read(
            agent, running=0, offline_seconds=settings.agent_offline_seconds
        )


@router.get("", response_model=list[AgentRead])
async def list_agents(session: SessionDep, settings: SettingsDep, _: Viewer) -> list[AgentRead]:
    return await agent_service.list_agents(session, offline_seconds=settings.agent_offline_seconds)


@router.post("/{agent_id}/drain", response_model=AgentRead)
async def drain_agent(
    agent_id: str, session: SessionDep, settings: SettingsDep, _: Admin
) -> AgentRead:
    """Finish what runs, claim nothing new; the agent exits when idle."""
    async with session.begin():
        return await agent_service.drain(
            session, agent_id=agent_id, offline_seconds=settings.agent_offline_seconds
        )


@router.post("/{agent_id}/claim", response_model=ClaimResponse)
async def claim(
    agent_id: str,
    body: ClaimRequest,
    request: Request,
    settings: SettingsDep,
    principal: AgentPrincipal,
) -> ClaimResponse:
    """Lease up to ``capacity`` jobs; with none queued, wait up to ``wait_s`` for one.

    The wait is a place in the notifier's ``ClaimLine``: a queued job wakes one waiter. A
    wake-up this call receives and does not turn into a lease (it found nothing, its agent went
    away, it drains, it failed) is passed on to the next waiter, on every way out."""
    state = request.app.state
    line: ClaimLine = state.notifier.claims
    deadline = time.monotonic() + body.wait_s
    agent: Agent | None = None
    unused: list[ClaimWaiter] = []  # woken, and not yet followed by a query that found work
    try:
        while True:
            waiter = line.join()  # before the query: no wake-up is missed
            try:
                if state.notifier.closing or await request.is_disconnected():
                    return ClaimResponse(leases=[])  # nobody would receive the lease
                async with state.sessionmaker() as session, session.begin():
                    if agent is None:  # the first pass; a wake-up goes straight to the claim
                        agent = await agent_service.get_agent(
                            session, agent_id=agent_id, token_id=_token_scope(principal)
                        )
                        await agent_service.touch(
                            session, agent=agent, fresh_seconds=settings.agent_offline_seconds / 20
                        )
                        if agent.drain_requested:
                            return ClaimResponse(leases=[], drain=True)
                    jobs = await queue.claim_jobs(
                        session,
                        agent=agent,
                        capacity=body.capacity,
                        lease_ttl_seconds=settings.lease_ttl_seconds,
                    )
                    leases = [await agent_service.to_lease(job, store=state.store) for job in jobs]
                if leases:
                    unused.clear()
                    state.metrics.observe_claims(jobs)
                    return ClaimResponse(leases=leases)
                for woken in unused:  # this query came after their wake-ups and found nothing
                    line.pass_on(woken)
                unused.clear()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ClaimResponse(leases=[])
                await state.notifier.wait(waiter.event, remaining)
            finally:
                line.leave(waiter)
                if waiter.woken:
                    unused.append(waiter)
    finally:
        for woken in unused:
            line.pass_on(woken)
