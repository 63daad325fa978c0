"""The agent's calls on a leased job: heartbeat, logs, complete (each with the lease token)."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.agents import (
    CompleteBatch,
    CompleteBatchResponse,
    CompleteRequest,
    CompleteResponse,
    Heartbeat,
    HeartbeatResponse,
    LogBatch,
)
from hq.schemas.common import Role
from hq.server.auth import Principal
from hq.server.deps import AgentPrincipal, SessionDep, SettingsDep, StoreDep
from hq.server.services import artifacts as artifact_service
from hq.server.services import leases as lease_service
from hq.server.storage import ObjectStore

router = APIRouter(prefix="/api/v1/jobs", tags=["agent"])


def _scope(principal: Principal) -> str | None:
    return None if principal.role == Role.admin else principal.token_id


async def _verify_artifacts(
    session: AsyncSession,
    store: ObjectStore,
    reports: Sequence[lease_service.Report],
    agent_token_id: str | None,
) -> list[lease_service.Precheck]:
    """Check listed artifacts in storage between a short transaction that reads the leases and
    the one that accepts the results: hashing holds no database lock."""
    if not any(body.artifacts for _, body in reports):
        return [None] * len(reports)
    async with session.begin():
        attempts = await lease_service.attempts_to_verify(
            session, reports=reports, agent_token_id=agent_token_id
        )
    out: list[lease_service.Precheck] = []
    for (job_id, body), attempt in zip(reports, attempts, strict=True):
        if not isinstance(attempt, int):
            out.append(attempt)
            continue
        try:
            verified = await artifact_service.verify_artifacts(
                store=store, job_id=job_id, attempt=attempt, files=body.artifacts
            )
        except errors.HQError as exc:
            out.append(exc)
        else:
            out.append(verified)
    return out


@router.post("/complete", response_model=CompleteBatchResponse)
async def complete_many(
    body: CompleteBatch,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: AgentPrincipal,
) -> CompleteBatchResponse:
    """Report the ends of several attempts in one transaction; each item is accepted or refused
    (with the code ``complete`` would answer) on its own."""
    scope = _scope(principal)
    prechecks = await _verify_artifacts(
        session, store, [(item.job_id, item) for item in body.items], scope
    )
    async with session.begin():
        answers = await lease_service.complete_many(
            session, items=body.items, agent_token_id=scope, prechecks=prechecks
        )
    metrics = request.app.state.metrics
    for answer, duration in answers:
        if answer.accepted and answer.status is not None:
            metrics.observe_completion(status=answer.status, duration_s=duration)
    return CompleteBatchResponse(results=[answer for answer, _ in answers])


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
            agent_token_id=_scope(principal),
            lease_ttl_seconds=settings.lease_ttl_seconds,
        )


@router.post("/{job_id}/logs", status_code=204)
async def append_logs(
    job_id: str, body: LogBatch, session: SessionDep, principal: AgentPrincipal
) -> None:
    async with session.begin():
        await lease_service.append_logs(
            session, job_id=job_id, batch=body, agent_token_id=_scope(principal)
        )


@router.post("/{job_id}/complete", response_model=CompleteResponse)
async def complete(
    job_id: str,
    body: CompleteRequest,
    request: Request,
    session: SessionDep,
    store: StoreDep,
    principal: AgentPrincipal,
) -> CompleteResponse:
    """Report the end of an attempt: a stale token gets 409, the same token twice the first
    answer."""
    scope = _scope(principal)
    [precheck] = await _verify_artifacts(session, store, [(job_id, body)], scope)
    if isinstance(precheck, errors.HQError):
        raise precheck
    async with session.begin():
        answer, duration = await lease_service.complete(
            session, job_id=job_id, body=body, agent_token_id=scope, verified=precheck
        )
    request.app.state.metrics.observe_completion(status=answer.status, duration_s=duration)
    return answer
