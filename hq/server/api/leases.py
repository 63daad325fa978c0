"""The agent's calls on a leased job: heartbeat, logs, complete (each with the lease token)."""

from __future__ import annotations

from fastapi import APIRouter

from hq.schemas.agents import (
    CompleteBatch,
    CompleteBatchResponse,
    CompleteRequest,
    CompleteResponse,
    Heartbeat,
    HeartbeatResponse,
    LogBatch,
)
from hq.server.deps import (
    AgentPrincipal,
    MetricsDep,
    SessionDep,
    SessionmakerDep,
    SettingsDep,
    StoreDep,
)
from hq.server.services import leases as lease_service
from hq.server.services import logs as log_service
from hq.server.settings import ServerSettings

router = APIRouter(prefix="/api/v1/jobs", tags=["agent"])


@router.post("/complete", response_model=CompleteBatchResponse)
async def complete_many(
    body: CompleteBatch,
    sessionmaker: SessionmakerDep,
    store: StoreDep,
    metrics: MetricsDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
) -> CompleteBatchResponse:
    """Report the ends of several attempts in one transaction; each item is accepted or refused
    (with the code ``complete`` would answer) on its own."""
    # The service opens its own transactions: artifacts are hashed between two of them.
    return await lease_service.complete_many(
        sessionmaker=sessionmaker,
        store=store,
        metrics=metrics,
        items=body.items,
        agent_token_id=principal.scope_token_id,
        backoff=_backoff(settings),
    )


@router.post("/{job_id}/heartbeat", response_model=HeartbeatResponse)
async def heartbeat(
    job_id: str,
    body: Heartbeat,
    session: SessionDep,
    settings: SettingsDep,
    principal: AgentPrincipal,
) -> HeartbeatResponse:
    """Extend the lease; the answer carries a cancel request."""
    async with session.begin():
        return await lease_service.heartbeat(
            session,
            job_id=job_id,
            lease_token=body.lease_token,
            agent_token_id=principal.scope_token_id,
            lease_ttl_seconds=settings.lease_ttl_seconds,
            paused_s=body.paused_s,
        )


@router.post("/{job_id}/logs", status_code=204)
async def append_logs(
    job_id: str, body: LogBatch, session: SessionDep, principal: AgentPrincipal
) -> None:
    async with session.begin():
        await log_service.append_logs(
            session, job_id=job_id, batch=body, agent_token_id=principal.scope_token_id
        )


@router.post("/{job_id}/complete", response_model=CompleteResponse)
async def complete(
    job_id: str,
    body: CompleteRequest,
    sessionmaker: SessionmakerDep,
    store: StoreDep,
    metrics: MetricsDep,
    principal: AgentPrincipal,
    settings: SettingsDep,
) -> CompleteResponse:
    """Report the end of an attempt: a stale token gets 409, the same token twice the first
    answer."""
    # The service opens its own transactions: artifacts are hashed between two of them.
    return await lease_service.complete(
        sessionmaker=sessionmaker,
        store=store,
        metrics=metrics,
        job_id=job_id,
        body=body,
        agent_token_id=principal.scope_token_id,
        backoff=_backoff(settings),
    )


def _backoff(settings: ServerSettings) -> lease_service.Backoff:
    """How long a retried job waits (the reaper's backoff, for the failures an agent reports)."""
    return lease_service.Backoff(
        seconds=settings.retry_backoff_seconds, max_seconds=settings.retry_backoff_max_seconds
    )
