"""Jobs: submission (idempotency, memoisation, scheduling hints), reads, listing, cancel."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import JobStatus
from hq.schemas.jobs import (
    JOB_SORT_KEYS,
    InputRef,
    JobCreate,
    JobDetail,
    JobEvent,
    JobRead,
    JobResult,
)
from hq.schemas.manifest import Manifest
from hq.server import notify, paging, queue
from hq.server.db.models import (
    Agent,
    Job,
    JobEventRow,
    JobInput,
    JobLabel,
    JobResultRow,
    ScriptVersion,
)
from hq.server.db.types import utcnow
from hq.server.services import datasets as dataset_service
from hq.server.services import scripts as script_service
from hq.server.services.params import cache_key, canonical, sha256_text, validate_params

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass
class Prepared:
    """A validated submission, ready to insert; sweeps prepare many against one version."""

    version: ScriptVersion
    manifest: Manifest
    inputs: dict[str, InputRef] = field(default_factory=dict)


async def prepare(session: AsyncSession, *, script: str, inputs: dict[str, str]) -> Prepared:
    version = await script_service.resolve(session, ref=script)
    manifest = Manifest.model_validate(version.manifest)
    for name in inputs:
        if name not in manifest.inputs:
            known = ", ".join(manifest.inputs) or "none"
            raise errors.ValidationFailed(
                f"inputs.{name}: script {version.script_name} has no input {name!r} "
                f"(its inputs: {known})",
                field=f"inputs.{name}",
            )
    for name, spec in manifest.inputs.items():
        if spec.required and name not in inputs:
            raise errors.ValidationFailed(
                f"inputs.{name} is required: give a dataset as 'name' or 'name@version'",
                field=f"inputs.{name}",
            )
    refs: dict[str, InputRef] = {}
    if inputs:
        for name, ref in inputs.items():
            try:
                row = await dataset_service.resolve_input(session, ref=ref)
            except (errors.ValidationFailed, errors.NotFound) as exc:  # say which input
                raise type(exc)(f"inputs.{name}: {exc.message}", field=f"inputs.{name}") from exc
            refs[name] = InputRef(
                dataset=row.dataset_name,
                version=row.version,
                sha256=row.sha256,
                size=row.size,
                filename=row.filename,
            )
    return Prepared(version=version, manifest=manifest, inputs=refs)


async def live_agents(session: AsyncSession, *, offline_seconds: float) -> list[Agent]:
    since = utcnow() - timedelta(seconds=offline_seconds)
    return list(
        (
            await session.scalars(
                select(Agent).where(Agent.last_seen_at >= since, Agent.drain_requested.is_(False))
            )
        ).all()
    )


def unschedulable_reason(
    *, agents: list[Agent], labels: list[str], gpus: int, queue_name: str
) -> str | None:
    if not agents:
        return "no live agent is registered: the job waits until one starts"
    need = set(labels)
    for agent in agents:
        if need <= set(agent.labels) and gpus <= agent.gpus and queue_name in agent.queues:
            return None
    parts = [f"queue {queue_name!r}"]
    if need:
        parts.append(f"labels {sorted(need)}")
    if gpus:
        parts.append(f"{gpus} GPU(s)")
    return f"no live agent serves {' with '.join(parts)}"


async def create_job(
    session: AsyncSession,
    *,
    body: JobCreate,
    prepared: Prepared,
    agents: list[Agent],
    params: dict[str, Any] | None = None,
    sweep_id: str | None = None,
    repeat: int = 0,
    created_by: str | None = None,
    default_timeout_s: int = 3600,
    idempotency_key: str | None = None,
    request_hash: str | None = None,
) -> Job:
    """Insert one validated job (queued, or succeeded at once when memoised)."""
    manifest, version = prepared.manifest, prepared.version
    full_params = validate_params(manifest, body.params if params is None else params)
    key = cache_key(
        digest=version.digest,
        params=full_params,
        input_shas={n: r.sha256 for n, r in prepared.inputs.items()},
        repeat=repeat,
    )
    labels = sorted(set(manifest.labels) | set(body.labels))
    now = utcnow()
    job = Job(
        id=queue.new_job_id(),
        script_name=version.script_name,
        script_version=version.version,
        image=version.image,
        digest=version.digest,
        manifest=version.manifest,
        params=full_params,
        inputs={n: r.model_dump() for n, r in prepared.inputs.items()},
        status=JobStatus.queued.value,
        priority=body.priority,
        queue=body.queue,
        labels=labels,
        gpus=manifest.resources.gpus,
        attempts=0,
        max_attempts=body.max_attempts,
        timeout_s=body.timeout_s or manifest.resources.timeout_s or default_timeout_s,
        reuse=body.reuse,
        cache_key=key,
        sweep_id=sweep_id,
        repeat=repeat,
        idempotency_key=idempotency_key,
        request_hash=request_hash,
        metrics={},
        created_by=created_by,
        created_at=now,
        run_after=now,
    )
    origin = await _memoised(session, key=key) if body.reuse else None
    if origin is not None:
        job.status = JobStatus.succeeded.value
        job.reused_from = origin.reused_from or origin.id
        job.metrics = origin.metrics
        job.exit_code = origin.exit_code
        job.started_at = job.finished_at = now
    else:
        job.unschedulable_reason = unschedulable_reason(
            agents=agents, labels=labels, gpus=job.gpus, queue_name=body.queue
        )
    session.add(job)
    session.add_all(JobLabel(job_id=job.id, label=label) for label in labels)
    session.add_all(
        JobInput(job_id=job.id, name=n, dataset_name=r.dataset, version=r.version, sha256=r.sha256)
        for n, r in prepared.inputs.items()
    )
    session.add(JobEventRow(job_id=job.id, at=now, kind="queued"))
    if origin is not None:
        session.add(
            JobEventRow(
                job_id=job.id,
                at=now,
                kind="succeeded",
                detail=f"reused the result of job {job.reused_from}",
            )
        )
        await notify.mark(session, "done")
    else:
        await notify.mark(session, "queued")
    return job


async def _memoised(session: AsyncSession, *, key: str) -> Job | None:
    return await session.scalar(
        select(Job)
        .where(
            Job.cache_key == key, Job.status == JobStatus.succeeded.value, Job.reused_from.is_(None)
        )
        .order_by(Job.finished_at.desc())
        .limit(1)
    )


async def submit(
    session: AsyncSession,
    *,
    body: JobCreate,
    created_by: str | None,
    idempotency_key: str | None,
    offline_seconds: float,
    default_timeout_s: int,
) -> tuple[Job, bool]:
    """Submit one job; with an Idempotency-Key, the first job comes back instead of a second."""
    request_hash = sha256_text(canonical(body.model_dump(mode="json")))
    if idempotency_key is not None:
        # Keys are scoped to the token that sent them: one client's key never returns another's job.
        idempotency_key = sha256_text(f"{created_by or ''}\0{idempotency_key}")
        existing = await _same_key(session, key=idempotency_key, request_hash=request_hash)
        if existing is not None:
            return existing, False
    prepared = await prepare(session, script=body.script, inputs=body.inputs)
    agents = await live_agents(session, offline_seconds=offline_seconds)
    # With a key, a savepoint: when a concurrent request with the same key commits first, our
    # insert fails on the unique key (at the autoflush of any later statement, so the whole
    # insert is inside) and the transaction lives on to read the winner's job.
    savepoint = session.begin_nested() if idempotency_key is not None else nullcontext()
    try:
        async with savepoint:
            job = await create_job(
                session,
                body=body,
                prepared=prepared,
                agents=agents,
                created_by=created_by,
                default_timeout_s=default_timeout_s,
                idempotency_key=idempotency_key,
                request_hash=request_hash,
            )
            await session.flush()
    except IntegrityError as exc:
        if idempotency_key is None:
            raise
        winner = await _same_key(session, key=idempotency_key, request_hash=request_hash)
        if winner is None:
            raise errors.Conflict(
                "a request with this Idempotency-Key is in flight; retry", field="Idempotency-Key"
            ) from exc
        return winner, False
    return job, True


async def _same_key(session: AsyncSession, *, key: str, request_hash: str) -> Job | None:
    """The job submitted with this Idempotency-Key, if any; a 422 if its request differed."""
    existing = await session.scalar(select(Job).where(Job.idempotency_key == key))
    if existing is not None and existing.request_hash != request_hash:
        raise errors.IdempotencyMismatch(
            "this Idempotency-Key was used for a different request; use a new key",
            field="Idempotency-Key",
        )
    return existing


def to_read(job: Job) -> JobRead:
    return JobRead(
        id=job.id,
        script=job.script_name,
        script_version=job.script_version,
        image=job.image,
        digest=job.digest,
        params=job.params,
        inputs={n: InputRef.model_validate(v) for n, v in job.inputs.items()},
        status=JobStatus(job.status),
        priority=job.priority,
        queue=job.queue,
        labels=job.labels,
        attempts=job.attempts,
        max_attempts=job.max_attempts,
        timeout_s=job.timeout_s,
        reuse=job.reuse,
        cache_key=job.cache_key,
        reused_from=job.reused_from,
        sweep_id=job.sweep_id,
        agent_id=job.agent_id,
        exit_code=job.exit_code,
        failure_reason=job.failure_reason,
        unschedulable_reason=job.unschedulable_reason,
        cancel_requested=job.cancel_requested,
        metrics=job.metrics or {},
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
    )


async def get_job_row(session: AsyncSession, *, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    return job


async def get_detail(session: AsyncSession, *, job_id: str) -> JobDetail:
    job = await get_job_row(session, job_id=job_id)
    events = (
        await session.scalars(
            select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        )
    ).all()
    return JobDetail(
        **to_read(job).model_dump(),
        events=[
            JobEvent(at=e.at, kind=e.kind, attempt=e.attempt, agent_id=e.agent_id, detail=e.detail)
            for e in events
        ],
    )


async def get_result(session: AsyncSession, *, job_id: str) -> JobResult:
    job = await get_job_row(session, job_id=job_id)
    row = await session.get(JobResultRow, job.reused_from or job.id)
    return JobResult(
        job_id=job.id,
        status=JobStatus(job.status),
        metrics=job.metrics or {},
        tables=row.tables if row else {},
        charts=row.charts if row else [],
        exit_code=job.exit_code,
        failure_reason=job.failure_reason,
        reused_from=job.reused_from,
    )


async def cancel(session: AsyncSession, *, job_id: str) -> Job:
    """Queued: cancelled now. Running: the agent hears it on its next heartbeat and kills."""
    job = await session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    if JobStatus(job.status).finished:
        raise errors.Conflict(f"job {job_id} already ended ({job.status}); nothing to cancel")
    if job.status == JobStatus.queued.value:
        await queue.finish(
            session,
            job=job,
            status=JobStatus.cancelled,
            reason="cancelled while queued",
            detail="while queued",
        )
    elif not job.cancel_requested:
        job.cancel_requested = True
        session.add(
            JobEventRow(
                job_id=job.id, kind="cancel_requested", attempt=job.attempts, agent_id=job.agent_id
            )
        )
        await session.flush()
    return job


SORT_COLUMNS = {
    "created_at": Job.created_at,
    "priority": Job.priority,
    "status": Job.status,
    "script": Job.script_name,
    "finished_at": Job.finished_at,
}
CURSOR_TYPES: dict[str, tuple[type, ...]] = {
    "created_at": (datetime,),
    "priority": (int,),
    "status": (str,),
    "script": (str,),
    "finished_at": (datetime, type(None)),
}


async def list_jobs(
    session: AsyncSession,
    *,
    statuses: list[str],
    script: str | None,
    sweep: str | None,
    queue_name: str | None,
    created_after: datetime | None,
    created_before: datetime | None,
    sort: str,
    limit: int,
    cursor: str | None,
) -> tuple[list[Job], str | None]:
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in SORT_COLUMNS:
        raise errors.ValidationFailed(
            f"unknown sort key {sort!r}; use one of: {', '.join(JOB_SORT_KEYS)}", field="sort"
        )
    for status in statuses:
        if status not in JobStatus.__members__:
            raise errors.ValidationFailed(
                f"unknown status {status!r}; use: {', '.join(JobStatus)}", field="status"
            )
    column = SORT_COLUMNS[key]
    if key == "finished_at":  # unfinished jobs sort as if they finish at the end of time
        column = func.coalesce(Job.finished_at, FAR_FUTURE)  # type: ignore[assignment]
    stmt = select(Job)
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    if script:
        stmt = stmt.where(Job.script_name == script)
    if sweep:
        stmt = stmt.where(Job.sweep_id == sweep)
    if queue_name:
        stmt = stmt.where(Job.queue == queue_name)
    if created_after:
        stmt = stmt.where(Job.created_at >= created_after)
    if created_before:
        stmt = stmt.where(Job.created_at < created_before)
    if cursor:
        value, last_id = paging.decode_cursor(cursor, sort=sort, value_types=CURSOR_TYPES[key])
        if key == "finished_at" and value is None:
            value = FAR_FUTURE
        stmt = stmt.where(
            paging.after(column, Job.id, value=value, last_id=last_id, descending=descending)
        )
    order = (column.desc(), Job.id.desc()) if descending else (column.asc(), Job.id.asc())
    rows = (await session.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    attribute = "script_name" if key == "script" else key
    return paging.cut_page(rows, limit, sort=sort, key=lambda j: (getattr(j, attribute), j.id))
