"""Agents: register, list, drain, and the long-poll claim."""

from __future__ import annotations

from fastapi import APIRouter, status

from hq.schemas.agents import (
    AgentCreate,
    AgentRead,
    AgentState,
    ClaimRequest,
    ClaimResponse,
    CompleteAndClaim,
    CompleteAndClaimResponse,
    WarmReport,
)
from hq.server.deps import (
    Admin,
    AgentPrincipal,
    DisconnectedDep,
    MetricsDep,
    NotifierDep,
    SessionDep,
    SessionmakerDep,
    SettingsDep,
    StoreDep,
    Viewer,
)
from hq.server.services import agents as agent_service
from hq.server.services import claims as claim_service
from hq.server.services import leases as lease_service

router = APIRouter(prefix="/api/v1/agents", tags=["agents"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AgentRead)
async def register_agent(
    body: AgentCreate, session: SessionDep, settings: SettingsDep, principal: AgentPrincipal
) -> AgentRead:
    async with session.begin():
        return await agent_service.register(
            session,
            body=body,
            token_id=principal.token_id,
            offline_seconds=settings.agent_offline_seconds,
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


@router.put("/{agent_id}/warm", status_code=status.HTTP_204_NO_CONTENT)
async def report_warm(
    agent_id: str, body: WarmReport, session: SessionDep, principal: AgentPrincipal
) -> None:
    """The agent's warm containers waiting, per script (the agents page shows them)."""
    async with session.begin():
        await agent_service.report_warm(
            session, agent_id=agent_id, token_id=principal.scope_token_id, waiting=body.waiting
        )


@router.put("/{agent_id}/state", status_code=status.HTTP_204_NO_CONTENT)
async def report_state(
    agent_id: str, body: AgentState, session: SessionDep, principal: AgentPrincipal
) -> None:
    """A free-host agent's state: why it takes no work now (None: free), and the jobs it holds
    paused (the agents page and `hq agent list` show both); it also counts as a sign of life."""
    async with session.begin():
        await agent_service.report_state(
            session, agent_id=agent_id, token_id=principal.scope_token_id, state=body
        )


@router.post("/{agent_id}/claim", response_model=ClaimResponse)
async def claim(
    agent_id: str,
    body: ClaimRequest,
    sessionmaker: SessionmakerDep,
    notifier: NotifierDep,
    store: StoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    disconnected: DisconnectedDep,
    principal: AgentPrincipal,
) -> ClaimResponse:
    """Lease up to ``capacity`` jobs; with none queued, wait up to ``wait_s`` for one.

    The wait is a place in the notifier's ``ClaimLine``: a queued job wakes one waiter. A
    wake-up this call receives and does not turn into a lease (it found nothing, its agent went
    away, it drains, it failed) is passed on to the next waiter, on every way out."""
    return await claim_service.claim(
        sessionmaker=sessionmaker,
        notifier=notifier,
        store=store,
        metrics=metrics,
        settings=settings,
        agent_id=agent_id,
        token_id=principal.scope_token_id,
        body=body,
        disconnected=disconnected,
    )


@router.post("/{agent_id}/complete-and-claim", response_model=CompleteAndClaimResponse)
async def complete_and_claim(
    agent_id: str,
    body: CompleteAndClaim,
    sessionmaker: SessionmakerDep,
    notifier: NotifierDep,
    store: StoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
    disconnected: DisconnectedDep,
    principal: AgentPrincipal,
) -> CompleteAndClaimResponse:
    """``POST /jobs/complete`` with ``items``, then ``claim`` (one commit): an agent's
    finished batch and its next claim in one round trip."""
    return await claim_service.complete_and_claim(
        sessionmaker=sessionmaker,
        notifier=notifier,
        store=store,
        metrics=metrics,
        settings=settings,
        agent_id=agent_id,
        token_id=principal.scope_token_id,
        body=body,
        disconnected=disconnected,
        backoff=lease_service.Backoff(
            seconds=settings.retry_backoff_seconds, max_seconds=settings.retry_backoff_max_seconds
        ),
    )
