"""What an agent does with a lease: heartbeat, ship logs, complete."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.agents import (
    CompleteItem,
    CompleteItemResponse,
    CompleteRequest,
    CompleteResponse,
    HeartbeatResponse,
    LogBatch,
)
from hq.schemas.common import JobStatus
from hq.server import notify, queue
from hq.server.db.models import Agent, Job, JobLog, JobResultRow
from hq.server.services import artifacts as artifact_service
from hq.server.services.artifacts import VerifiedArtifacts

AGENT_FINAL_STATUSES = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.timed_out, JobStatus.cancelled}
)


async def heartbeat(
    session: AsyncSession,
    *,
    job_id: str,
    lease_token: str,
    agent_token_id: str | None,
    lease_ttl_seconds: float,
) -> HeartbeatResponse:
    job = await queue.get_leased_job(
        session,
        job_id=job_id,
        lease_token=lease_token,
        agent_token_id=agent_token_id,
        for_update=True,
    )
    await queue.renew_lease(session, job=job, lease_ttl_seconds=lease_ttl_seconds)
    assert job.lease_expires_at is not None
    return HeartbeatResponse(
        lease_expires_at=job.lease_expires_at, cancel_requested=job.cancel_requested
    )


async def append_logs(
    session: AsyncSession, *, job_id: str, batch: LogBatch, agent_token_id: str | None
) -> int:
    job = await queue.get_leased_job(
        session, job_id=job_id, lease_token=batch.lease_token, agent_token_id=agent_token_id
    )
    session.add_all(
        JobLog(job_id=job.id, attempt=job.attempts, at=line.at, stream=line.stream, text=line.text)
        for line in batch.lines
    )
    await notify.mark(session, "logs")
    await session.flush()
    return len(batch.lines)


def _check_status(body: CompleteRequest) -> None:
    if body.status not in AGENT_FINAL_STATUSES:
        raise errors.ValidationFailed(
            f"status must be one of {', '.join(sorted(AGENT_FINAL_STATUSES))}", field="status"
        )


def _replay(job: Job, body: CompleteRequest) -> CompleteResponse | None:
    """The first answer again when this lease token already completed the job."""
    if job.completed_token is not None and job.completed_token == body.lease_token:
        return CompleteResponse(job_id=job.id, status=JobStatus(job.status), accepted=True)
    return None


async def _load(
    session: AsyncSession, *, ids: set[str], agent_token_id: str | None, lock: bool
) -> tuple[dict[str, Job], dict[str, str | None]]:
    """The jobs by id, and the agent token each one's agent registered with (looked up only
    when an agent, not an admin, asks). Locked rows are taken in id order, so concurrent
    batches cannot deadlock."""
    stmt = select(Job).where(Job.id.in_(sorted(ids))).order_by(Job.id)
    if lock:
        stmt = stmt.with_for_update()
    jobs = {job.id: job for job in (await session.scalars(stmt)).all()}
    agent_ids = {job.agent_id for job in jobs.values() if job.agent_id is not None}
    owners: dict[str, str | None] = {}
    if agent_token_id is not None and agent_ids:
        owners = dict(
            (
                await session.execute(
                    select(Agent.id, Agent.token_id).where(Agent.id.in_(agent_ids))
                )
            ).all()
        )
    return jobs, owners


def _leased(
    jobs: dict[str, Job],
    owners: dict[str, str | None],
    *,
    job_id: str,
    body: CompleteRequest,
    agent_token_id: str | None,
) -> Job:
    job = jobs.get(job_id)
    return queue.check_lease(
        job,
        job_id=job_id,
        lease_token=body.lease_token,
        agent_token_id=agent_token_id,
        owner_token_id=owners.get(job.agent_id or "") if job else None,
    )


Precheck = VerifiedArtifacts | errors.HQError | None
Report = tuple[str, CompleteRequest]  # (job id, what complete says of it)


async def attempts_to_verify(
    session: AsyncSession, *, reports: Sequence[Report], agent_token_id: str | None
) -> list[int | errors.HQError | None]:
    """For each item that lists artifacts, the attempt whose upload keys hold them (or what
    ``complete`` would refuse it with); None where there is nothing to check (no artifacts, or
    a replay). Read before the storage is read, so nobody but the lease holder makes HQ hash."""
    ids = {job_id for job_id, body in reports if body.artifacts}
    if not ids:
        return [None] * len(reports)
    jobs, owners = await _load(session, ids=ids, agent_token_id=agent_token_id, lock=False)
    out: list[int | errors.HQError | None] = []
    for job_id, body in reports:
        job = jobs.get(job_id)
        if not body.artifacts or (job is not None and _replay(job, body)):
            out.append(None)
            continue
        try:
            _check_status(body)
            leased = _leased(jobs, owners, job_id=job_id, body=body, agent_token_id=agent_token_id)
            out.append(leased.attempts)
        except errors.HQError as exc:
            out.append(exc)
    return out


async def complete(
    session: AsyncSession,
    *,
    job_id: str,
    body: CompleteRequest,
    agent_token_id: str | None,
    verified: VerifiedArtifacts | None = None,
) -> tuple[CompleteResponse, float | None]:
    """Accept exactly one result per job: a stale token gets 409, the same token twice the
    first answer. Returns the answer and the attempt's run time (None for a replay).
    ``verified`` holds the listed artifacts, checked in storage before this transaction."""
    [(answer, duration)] = await _complete(
        session,
        reports=[(job_id, body)],
        agent_token_id=agent_token_id,
        prechecks=[verified],
        raise_errors=True,
    )
    return CompleteResponse(job_id=job_id, status=answer.status, accepted=True), duration


async def complete_many(
    session: AsyncSession,
    *,
    items: list[CompleteItem],
    agent_token_id: str | None,
    prechecks: Sequence[Precheck],
) -> list[tuple[CompleteItemResponse, float | None]]:
    """``complete`` for each item, in one transaction (``prechecks`` aligned with ``items``).
    An item that ``complete`` would refuse gets its error code and message; the rest go on."""
    return await _complete(
        session,
        reports=[(item.job_id, item) for item in items],
        agent_token_id=agent_token_id,
        prechecks=prechecks,
        raise_errors=False,
    )


async def _complete(
    session: AsyncSession,
    *,
    reports: Sequence[Report],
    agent_token_id: str | None,
    prechecks: Sequence[Precheck],
    raise_errors: bool,
) -> list[tuple[CompleteItemResponse, float | None]]:
    jobs, owners = await _load(
        session, ids={job_id for job_id, _ in reports}, agent_token_id=agent_token_id, lock=True
    )
    out: list[tuple[CompleteItemResponse, float | None]] = []
    for (job_id, body), precheck in zip(reports, prechecks, strict=True):
        try:
            _check_status(body)
            job = jobs.get(job_id)
            replay = _replay(job, body) if job is not None else None
            if replay is not None:
                answer, duration = replay, None
            else:
                if isinstance(precheck, errors.HQError):
                    raise precheck
                job = _leased(jobs, owners, job_id=job_id, body=body, agent_token_id=agent_token_id)
                answer, duration = await _accept(session, job=job, body=body, verified=precheck)
        except errors.HQError as exc:
            if raise_errors:
                raise
            refused = CompleteItemResponse(
                job_id=job_id, accepted=False, code=exc.code, message=exc.message
            )
            out.append((refused, None))
            continue
        accepted = CompleteItemResponse(job_id=job_id, accepted=True, status=answer.status)
        out.append((accepted, duration))
    return out


async def _accept(
    session: AsyncSession, *, job: Job, body: CompleteRequest, verified: VerifiedArtifacts | None
) -> tuple[CompleteResponse, float | None]:
    """Record a result whose lease was checked: artifacts, results, the final status. Nothing
    here refuses after writing, so a refused item leaves nothing behind."""
    if body.status == JobStatus.succeeded and body.results is not None:
        try:
            body.results.check_tables_referenced()
        except ValueError as exc:
            raise errors.ValidationFailed(f"results: {exc}", field="results") from exc
    if body.artifacts:
        # The lease was checked in this transaction, and a lease token names one attempt.
        if verified is None or (verified.job_id, verified.attempt, verified.files) != (
            job.id,
            job.attempts,
            tuple(body.artifacts),
        ):
            raise RuntimeError(f"artifacts of job {job.id} were not verified for this attempt")
        await artifact_service.record_artifacts(session, verified=verified)
    results = body.results
    if results is not None:
        job.metrics = results.metrics
        session.add(
            JobResultRow(
                job_id=job.id, attempt=job.attempts, tables=results.tables, charts=results.charts
            )
        )
    reason = body.failure_reason
    if body.status == JobStatus.failed and not reason:
        reason = f"exit code {body.exit_code}" if body.exit_code is not None else "failed"
    await queue.finish(
        session,
        job=job,
        status=body.status,
        reason=None if body.status == JobStatus.succeeded else reason,
        exit_code=body.exit_code,
        flush=False,
    )  # written together at commit
    started = job.attempt_started_at
    duration = (job.finished_at - started).total_seconds() if started and job.finished_at else None
    return CompleteResponse(job_id=job.id, status=body.status, accepted=True), duration
