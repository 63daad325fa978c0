"""What an agent does with a lease: heartbeat, ship logs, complete."""

from __future__ import annotations

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
from hq.server.storage import ObjectStore

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


async def complete(
    session: AsyncSession,
    *,
    job_id: str,
    body: CompleteRequest,
    agent_token_id: str | None,
    store: ObjectStore,
) -> tuple[CompleteResponse, float | None]:
    """Accept exactly one result per job: a stale token gets 409, the same token twice the
    first answer. Returns the answer and the attempt's run time (None for a replay)."""
    _check_status(body)
    job = await session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    replay = _replay(job, body)
    if replay is not None:
        return replay, None
    job = await queue.get_leased_job(
        session, job_id=job_id, lease_token=body.lease_token, agent_token_id=agent_token_id
    )
    return await _accept(session, job=job, body=body, store=store)


async def complete_many(
    session: AsyncSession,
    *,
    items: list[CompleteItem],
    agent_token_id: str | None,
    store: ObjectStore,
) -> list[tuple[CompleteItemResponse, float | None]]:
    """``complete`` for each item, in one transaction: the jobs are locked in one statement
    (in id order, so concurrent batches cannot deadlock), their owners read in another.
    An item that ``complete`` would refuse gets its error code and message; the rest go on."""
    ids = sorted({item.job_id for item in items})
    jobs = {
        job.id: job
        for job in (
            await session.scalars(
                select(Job).where(Job.id.in_(ids)).order_by(Job.id).with_for_update()
            )
        ).all()
    }
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
    out: list[tuple[CompleteItemResponse, float | None]] = []
    for item in items:
        try:
            _check_status(item)
            job = jobs.get(item.job_id)
            replay = _replay(job, item) if job is not None else None
            if replay is not None:
                answer, duration = replay, None
            else:
                job = queue.check_lease(
                    job,
                    job_id=item.job_id,
                    lease_token=item.lease_token,
                    agent_token_id=agent_token_id,
                    owner_token_id=owners.get(job.agent_id or "") if job else None,
                )
                if item.artifacts:  # the one step that can fail after writing: undo it alone
                    async with session.begin_nested():
                        answer, duration = await _accept(session, job=job, body=item, store=store)
                else:
                    answer, duration = await _accept(session, job=job, body=item, store=store)
        except errors.HQError as exc:
            out.append(
                (
                    CompleteItemResponse(
                        job_id=item.job_id, accepted=False, code=exc.code, message=exc.message
                    ),
                    None,
                )
            )
            continue
        out.append(
            (
                CompleteItemResponse(job_id=item.job_id, accepted=True, status=answer.status),
                duration,
            )
        )
    return out


async def _accept(
    session: AsyncSession, *, job: Job, body: CompleteRequest, store: ObjectStore
) -> tuple[CompleteResponse, float | None]:
    """Record a result whose lease was checked: artifacts, results, the final status."""
    if body.status == JobStatus.succeeded and body.results is not None:
        try:
            body.results.check_tables_referenced()
        except ValueError as exc:
            raise errors.ValidationFailed(f"results: {exc}", field="results") from exc
    if body.artifacts:
        await artifact_service.verify_and_record_artifacts(
            session, store=store, job_id=job.id, attempt=job.attempts, files=body.artifacts
        )
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
