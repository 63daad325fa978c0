"""Submission: validation, idempotency, memoisation and scheduling hints, for jobs and sweeps."""

from __future__ import annotations

from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import JobStatus
from hq.schemas.jobs import InputRef, JobCreate, JobRead
from hq.schemas.manifest import Manifest, stored_manifest
from hq.schemas.resources import ResourceAboveCeiling, ResourceRequest, Resources
from hq.server import notify, queue
from hq.server.db.models import Agent, Job, JobEventRow, JobInput, JobLabel, ScriptVersion
from hq.server.db.types import UTCDateTime, utcnow
from hq.server.services import datasets as dataset_service
from hq.server.services import scripts as script_service
from hq.server.services.params import cache_key, canonical, sha256_text, validate_params


@dataclass
class Prepared:
    """A validated submission, ready to insert; sweeps prepare many against one version."""

    version: ScriptVersion
    manifest: Manifest
    inputs: dict[str, InputRef] = field(default_factory=dict)


async def prepare(
    session: AsyncSession,
    *,
    script: str,
    inputs: dict[str, str],
    later: Collection[str] = (),
) -> Prepared:
    """The script version and the input datasets a submission names, checked (for services).
    ``later``: inputs given later (a pipeline step's files from other steps), known but unset."""
    version = await script_service.resolve(session, ref=script)
    manifest = stored_manifest(version.manifest)
    for name in [*inputs, *later]:
        if name not in manifest.inputs:
            known = ", ".join(manifest.inputs) or "none"
            raise errors.ValidationFailed(
                f"inputs.{name}: script {version.script_name} has no input {name!r} "
                f"(its inputs: {known})",
                field=f"inputs.{name}",
            )
    for name, spec in manifest.inputs.items():
        if spec.required and name not in inputs and name not in later:
            raise errors.ValidationFailed(
                f"inputs.{name} is required: give a dataset as 'name' or 'name@version'",
                field=f"inputs.{name}",
            )
    refs: dict[str, InputRef] = {}
    for name, ref in inputs.items():
        try:
            row = await dataset_service.resolve_input(session, ref=ref)
        except (errors.ValidationFailed, errors.NotFound) as exc:  # say which input
            raise type(exc)(f"inputs.{name}: {exc.message}", field=f"inputs.{name}") from exc
        refs[name] = InputRef.model_validate(row)
    return Prepared(version=version, manifest=manifest, inputs=refs)


@dataclass(frozen=True)
class Serving:
    """What a live agent serves, for scheduling hints."""

    labels: list[str]
    gpus: int
    queues: list[str]


# Every submit reads these: three columns, not rows, in a statement built once.
_LIVE_AGENTS = select(Agent.labels, Agent.gpus, Agent.queues).where(
    Agent.last_seen_at >= bindparam("since", type_=UTCDateTime), Agent.drain_requested.is_(False)
)


async def live_agents(session: AsyncSession, *, offline_seconds: float) -> list[Serving]:
    """What the agents seen lately that do not drain serve."""
    since = utcnow() - timedelta(seconds=offline_seconds)
    rows = await session.execute(_LIVE_AGENTS, {"since": since})
    return [Serving(labels=labels, gpus=gpus, queues=queues) for labels, gpus, queues in rows]


def unschedulable_reason(
    *, agents: list[Serving], labels: list[str], gpus: int, queue_name: str
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


@dataclass(frozen=True)
class Origin:
    """Where a job comes from, beyond its body: its sweep point, its sender, its key."""

    params: dict[str, Any] | None = None  # None: the body's params
    sweep_id: str | None = None
    repeat: int = 0
    created_by: str | None = None
    idempotency_key: str | None = None
    request_hash: str | None = None
    waiting: bool = False  # a pipeline step's job: ``waiting`` until ``start_waiting``
    pipeline_id: str | None = None


async def create_job(
    session: AsyncSession,
    *,
    body: JobCreate,
    prepared: Prepared,
    agents: list[Serving],
    origin: Origin,
    default_timeout_s: int = 3600,
) -> Job:
    """Insert one validated job (queued, or succeeded at once when memoised); the row, for
    ``submit`` and sweeps."""
    job = _new_job(body=body, prepared=prepared, origin=origin, default_timeout_s=default_timeout_s)
    if origin.waiting:
        job.status = JobStatus.waiting.value
    reused = (
        await _memoised(session, key=job.cache_key) if body.reuse and not origin.waiting else None
    )
    if reused is not None:
        _reuse(job, reused)
    else:
        job.unschedulable_reason = unschedulable_reason(
            agents=agents, labels=job.labels, gpus=job.gpus, queue_name=body.queue
        )
    session.add(job)
    session.add_all(JobLabel(job_id=job.id, label=label) for label in job.labels)
    session.add_all(
        JobInput(job_id=job.id, name=n, dataset_name=r.dataset, version=r.version, sha256=r.sha256)
        for n, r in prepared.inputs.items()
    )
    first = JobStatus.waiting if origin.waiting else JobStatus.queued
    session.add(JobEventRow(job_id=job.id, at=job.created_at, kind=first.value))
    if origin.waiting:
        return job
    await _settle(session, job=job, reused=reused)
    return job


def _reuse(job: Job, reused: Job) -> None:
    job.status = JobStatus.succeeded.value
    job.reused_from = reused.reused_from or reused.id
    job.metrics = reused.metrics
    job.exit_code = reused.exit_code
    job.started_at = job.finished_at = utcnow()


async def _settle(session: AsyncSession, *, job: Job, reused: Job | None) -> None:
    """Tell the claims (a queued job) or the listeners of ends (a reused one)."""
    if reused is not None:
        detail = f"reused the result of job {job.reused_from}"
        session.add(JobEventRow(job_id=job.id, at=job.finished_at, kind="succeeded", detail=detail))
        await notify.mark(session, notify.ended(job.id))
        await queue.ends.ended(session, [job])
    else:
        await notify.mark(session, "queued")


async def start_waiting(session: AsyncSession, *, job: Job, inputs: dict[str, InputRef]) -> None:
    """A ``waiting`` job's last inputs are known: record them, compute its cache key and reuse a
    succeeded job of that key (succeeded at once) or queue it."""
    for name, ref in inputs.items():
        session.add(
            JobInput(
                job_id=job.id,
                name=name,
                dataset_name=ref.dataset,
                version=ref.version,
                sha256=ref.sha256,
            )
        )
    job.inputs = {**job.inputs, **{n: r.model_dump() for n, r in inputs.items()}}
    job.cache_key = cache_key(
        digest=job.digest,
        params=job.params,
        input_shas={n: str(r["sha256"]) for n, r in job.inputs.items()},
        repeat=job.repeat,
    )
    reused = await _memoised(session, key=job.cache_key) if job.reuse else None
    if reused is not None:
        _reuse(job, reused)
    else:
        job.status = JobStatus.queued.value
        job.run_after = utcnow()
        session.add(JobEventRow(job_id=job.id, kind="queued"))
    await session.flush()
    await _settle(session, job=job, reused=reused)


def job_resources(manifest: Manifest, body: JobCreate) -> Resources | None:
    """The resources a request asks for, checked against the manifest's ceilings (a 422 naming
    the one exceeded); None when it asks for nothing, so the job runs with the manifest's."""
    if body.resources is None and body.timeout_s is None:
        return None
    request = body.resources or ResourceRequest()
    top_level_timeout = request.timeout_s is None and body.timeout_s is not None
    if top_level_timeout:
        request = request.model_copy(update={"timeout_s": body.timeout_s})
    try:
        return manifest.resources.raised(request)
    except ResourceAboveCeiling as exc:
        top = exc.field == "timeout_s" and top_level_timeout
        raise errors.ValidationFailed(
            f"{exc.message}: ask for at most that, or raise resources.max_{exc.field} in the "
            "script's hq.yaml and publish a new version",
            field="timeout_s" if top else f"resources.{exc.field}",
        ) from exc


def _new_job(*, body: JobCreate, prepared: Prepared, origin: Origin, default_timeout_s: int) -> Job:
    """The queued row of a submission: params checked against the schema, its cache key."""
    manifest, version = prepared.manifest, prepared.version
    params = validate_params(manifest, body.params if origin.params is None else origin.params)
    key = cache_key(
        digest=version.digest,
        params=params,
        input_shas={n: r.sha256 for n, r in prepared.inputs.items()},
        repeat=origin.repeat,
    )
    resources = job_resources(manifest, body)
    stored = dict(version.manifest)
    if resources is not None:  # the job's copy of the manifest holds what it runs with
        stored["resources"] = resources.model_dump(mode="json")
    now = utcnow()
    return Job(
        id=queue.new_job_id(),
        script_name=version.script_name,
        script_version=version.version,
        image=version.image,
        digest=version.digest,
        manifest=stored,
        params=params,
        inputs={n: r.model_dump() for n, r in prepared.inputs.items()},
        status=JobStatus.queued.value,
        priority=body.priority,
        queue=body.queue,
        labels=sorted(set(manifest.labels) | set(body.labels)),
        gpus=manifest.resources.gpus,
        attempts=0,
        max_attempts=body.max_attempts,
        retry_on=list(body.retry_on),
        max_retries=body.max_retries if body.retry_on else 0,
        script_retries=0,
        timeout_s=(resources or manifest.resources).timeout_s or default_timeout_s,
        reuse=body.reuse,
        cache_key=key,
        sweep_id=origin.sweep_id,
        pipeline_id=origin.pipeline_id,
        repeat=origin.repeat,
        idempotency_key=origin.idempotency_key,
        request_hash=origin.request_hash,
        metrics={},
        created_by=origin.created_by,
        created_at=now,
        run_after=now,
    )


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
) -> tuple[JobRead, bool]:
    """Submit one job; with an Idempotency-Key, the first job comes back instead of a second.
    Returns the job and whether it was created."""
    request_hash = sha256_text(canonical(body.model_dump(mode="json")))
    if idempotency_key is not None:
        # Keys are scoped to the token that sent them: one client's key never returns another's job.
        idempotency_key = sha256_text(f"{created_by or ''}\0{idempotency_key}")
        existing = await _same_key(session, key=idempotency_key, request_hash=request_hash)
        if existing is not None:
            return JobRead.model_validate(existing), False
    prepared = await prepare(session, script=body.script, inputs=body.inputs)
    agents = await live_agents(session, offline_seconds=offline_seconds)
    origin = Origin(
        created_by=created_by, idempotency_key=idempotency_key, request_hash=request_hash
    )
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
                origin=origin,
                default_timeout_s=default_timeout_s,
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
        return JobRead.model_validate(winner), False
    return JobRead.model_validate(job), True


async def _same_key(session: AsyncSession, *, key: str, request_hash: str) -> Job | None:
    """The job submitted with this Idempotency-Key, if any; a 422 if its request differed."""
    existing = await session.scalar(select(Job).where(Job.idempotency_key == key))
    if existing is not None and existing.request_hash != request_hash:
        raise errors.IdempotencyMismatch(
            "this Idempotency-Key was used for a different request; use a new key",
            field="Idempotency-Key",
        )
    return existing
