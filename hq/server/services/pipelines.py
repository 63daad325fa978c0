"""Pipelines: a spec of steps checked whole at submit, a job per step made at once, and reads.

How steps move on when jobs end is in ``pipeline_steps``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import JobStatus, Page
from hq.schemas.jobs import JobCreate
from hq.schemas.pipelines import (
    FromStep,
    PipelineCreate,
    PipelineRead,
    PipelineStatus,
    StepRead,
    StepSpec,
)
from hq.server import paging
from hq.server.db.automation import Pipeline, PipelineStep
from hq.server.db.models import Job
from hq.server.services import jobs as job_service
from hq.server.services import pipeline_steps, pipeline_sweeps, submissions
from hq.server.services import sweeps as sweep_service
from hq.server.services.params import validate_params

PIPELINE_SORT = "-created_at"


def _fail(index: int, field: str, message: str) -> errors.ValidationFailed:
    where = f"steps.{index}.{field}" if field else f"steps.{index}"
    return errors.ValidationFailed(f"{where}: {message}", field=where)


def _check_graph(body: PipelineCreate) -> list[int]:
    """Step names unique, every ``from`` naming another step, no cycle; the steps' indexes in an
    order where each comes after the steps it reads from."""
    index = {}
    for i, step in enumerate(body.steps):
        if step.name in index:
            raise _fail(i, "name", f"step name {step.name!r} is used twice")
        index[step.name] = i
    for i, step in enumerate(body.steps):
        for input_name, ref in step.inputs.items():
            if not isinstance(ref, FromStep):
                continue
            if ref.step not in index:
                raise _fail(
                    i,
                    f"inputs.{input_name}",
                    f"from {ref.from_!r} names no step of this pipeline "
                    f"(its steps: {', '.join(index)})",
                )
            sweep = body.steps[index[ref.step]].sweep is not None
            if sweep != (ref.path == "results.csv"):
                hint = (
                    f"step {ref.step} is a sweep: read its table as '{ref.step}/results.csv'"
                    if sweep
                    else f"step {ref.step} is no sweep: read a file it writes, "
                    f"'{ref.step}/outputs/<path>'"
                )
                raise _fail(i, f"inputs.{input_name}", f"from {ref.from_!r}: {hint}")
    order: list[int] = []
    state: dict[str, str] = {}

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            cycle = " -> ".join([*path[path.index(name) :], name])
            raise _fail(
                index[name], "inputs", f"the steps read from each other in a cycle: {cycle}"
            )
        state[name] = "open"
        for need in body.steps[index[name]].needs:
            visit(need, [*path, name])
        state[name] = "done"
        order.append(index[name])

    for step in body.steps:
        visit(step.name, [])
    return order


def _job_body(step: StepSpec, *, reuse: bool) -> JobCreate:
    return JobCreate(
        script=step.script,
        params=step.params,
        inputs={n: r for n, r in step.inputs.items() if isinstance(r, str)},
        priority=step.priority,
        queue=step.queue,
        labels=step.labels,
        max_attempts=step.max_attempts,
        timeout_s=step.timeout_s,
        resources=step.resources,
        reuse=reuse,
    )


async def submit(
    session: AsyncSession,
    *,
    body: PipelineCreate,
    created_by: str | None,
    offline_seconds: float,
    default_timeout_s: int,
) -> PipelineRead:
    """Check every step, make a ``waiting`` job per step, then start the steps that read only
    datasets (reused at once or queued); a bad step is a 422 naming it, and nothing is stored."""
    order = _check_graph(body)
    agents = await submissions.live_agents(session, offline_seconds=offline_seconds)
    pipeline = Pipeline(
        id=str(uuid.uuid4()),
        name=body.name,
        spec=body.model_dump(mode="json"),
        reuse=body.reuse,
        status=PipelineStatus.queued.value,
        created_by=created_by,
    )
    session.add(pipeline)
    rows: list[PipelineStep] = []
    jobs: dict[str, Job] = {}
    for i in order:
        job_id = None
        if body.steps[i].sweep is not None:
            await _check_sweep_step(session, step=body.steps[i], index=i)
        else:
            job = await _waiting_job(
                session,
                step=body.steps[i],
                index=i,
                pipeline_id=pipeline.id,
                reuse=body.reuse,
                agents=agents,
                created_by=created_by,
                default_timeout_s=default_timeout_s,
            )
            jobs[job.id] = job
            job_id = job.id
        rows.append(
            PipelineStep(
                pipeline_id=pipeline.id,
                name=body.steps[i].name,
                position=i,
                spec=body.steps[i].model_dump(mode="json"),
                needs=body.steps[i].needs,
                status=JobStatus.waiting.value,
                job_id=job_id,
            )
        )
    session.add_all(rows)
    await session.flush()
    for row in rows:  # in dependency order: a reused step may start the next at once
        if not row.needs and pipeline_steps.step_status(row, jobs) == JobStatus.waiting.value:
            await pipeline_steps.start_step(session, step=row, steps=rows, jobs=jobs)
    await pipeline_steps.settle_pipeline(session, pipeline_id=pipeline.id)
    return await get_pipeline(session, pipeline_id=pipeline.id)


async def _check_sweep_step(session: AsyncSession, *, step: StepSpec, index: int) -> None:
    """A sweep step is checked whole at submit (script, inputs, every point's params, resources)
    though its sweep is made when it can start."""
    datasets = {n: r for n, r in step.inputs.items() if isinstance(r, str)}
    later = [n for n, r in step.inputs.items() if isinstance(r, FromStep)]
    body = pipeline_sweeps.sweep_body(step, inputs=datasets, reuse=True)
    try:
        prepared = await submissions.prepare(
            session, script=step.script, inputs=datasets, later=later
        )
        for point in sweep_service.expand(body):
            validate_params(prepared.manifest, point)
        submissions.job_resources(prepared.manifest, _job_body(step, reuse=True))
    except (errors.ValidationFailed, errors.NotFound) as exc:
        field = f"steps.{index}.{exc.field or 'script'}"
        raise errors.ValidationFailed(
            f"steps.{index} ({step.name}): {exc.message}", field=field
        ) from exc


async def _waiting_job(
    session: AsyncSession,
    *,
    step: StepSpec,
    index: int,
    pipeline_id: str,
    reuse: bool,
    agents: list[submissions.Serving],
    created_by: str | None,
    default_timeout_s: int,
) -> Job:
    """The step's job, checked as a job submission is, in status ``waiting``; a 422 names the
    step and the field."""
    job_body = _job_body(step, reuse=reuse)
    later = [n for n, r in step.inputs.items() if isinstance(r, FromStep)]
    try:
        prepared = await submissions.prepare(
            session, script=step.script, inputs=job_body.inputs, later=later
        )
        return await submissions.create_job(
            session,
            body=job_body,
            prepared=prepared,
            agents=agents,
            origin=submissions.Origin(created_by=created_by, waiting=True, pipeline_id=pipeline_id),
            default_timeout_s=default_timeout_s,
        )
    except (errors.ValidationFailed, errors.NotFound) as exc:
        field = f"steps.{index}.{exc.field or 'script'}"
        raise errors.ValidationFailed(
            f"steps.{index} ({step.name}): {exc.message}", field=field
        ) from exc


async def _row(session: AsyncSession, *, pipeline_id: str) -> Pipeline:
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None:
        raise errors.NotFound(f"pipeline {pipeline_id} not found")
    return pipeline


async def _read(session: AsyncSession, pipeline: Pipeline) -> PipelineRead:
    steps, jobs = await pipeline_steps.load(session, pipeline_id=pipeline.id)
    reads = []
    for step in steps:
        job = jobs.get(str(step.job_id))
        status = job.status if job is not None else step.status
        reads.append(
            StepRead(
                name=step.name,
                script=str(step.spec.get("script", "")),
                needs=list(step.needs),
                status=status,
                reason=job.failure_reason if job is not None else step.reason,
                job_id=step.job_id,
                sweep_id=step.sweep_id,
                reused=job is not None and job.reused_from is not None,
                reused_from=job.reused_from if job is not None else None,
            )
        )
    status = pipeline.status
    if pipeline.finished_at is None:
        status = pipeline_steps.derive_status([s.status for s in reads]).value
    return PipelineRead.from_row(pipeline, status=status, steps=reads)


async def get_pipeline(session: AsyncSession, *, pipeline_id: str) -> PipelineRead:
    return await _read(session, await _row(session, pipeline_id=pipeline_id))


async def list_pipelines(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> Page[PipelineRead]:
    """Pipelines, newest first; keyset pages over (created_at, id)."""
    stmt = select(Pipeline)
    if cursor:
        value, last_id = paging.decode_cursor(cursor, sort=PIPELINE_SORT, value_types=(datetime,))
        stmt = stmt.where(
            paging.after(
                Pipeline.created_at, Pipeline.id, value=value, last_id=last_id, descending=True
            )
        )
    order = (Pipeline.created_at.desc(), Pipeline.id.desc())
    rows = (await session.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    page, next_cursor = paging.cut_page(
        rows, limit, sort=PIPELINE_SORT, key=lambda p: (p.created_at, p.id)
    )
    return Page[PipelineRead](
        items=[await _read(session, p) for p in page], next_cursor=next_cursor
    )


async def cancel(
    session: AsyncSession, *, pipeline_id: str, owner_token_id: str | None
) -> PipelineRead:
    """Cancel every unfinished step: waiting and queued jobs now, running ones on their agent's
    next heartbeat. ``owner_token_id`` as for a job (None for an admin)."""
    pipeline = await _row(session, pipeline_id=pipeline_id)
    if owner_token_id is not None and pipeline.created_by != owner_token_id:
        raise errors.Forbidden(
            f"pipeline {pipeline_id} was submitted with another token: only that token or an "
            "admin may cancel it"
        )
    if pipeline.finished_at is not None:
        raise errors.Conflict(f"pipeline {pipeline_id} already ended ({pipeline.status})")
    steps, jobs = await pipeline_steps.load(session, pipeline_id=pipeline_id)
    for step in steps:
        for job in await _unfinished_jobs(session, step=step, jobs=jobs):
            await job_service.cancel(session, job_id=job.id, owner_token_id=None)
        if step.job_id is None and step.status == JobStatus.waiting.value:
            step.status, step.reason = JobStatus.cancelled.value, "the pipeline was cancelled"
    await pipeline_steps.settle_pipeline(session, pipeline_id=pipeline_id)
    return await get_pipeline(session, pipeline_id=pipeline_id)


async def _unfinished_jobs(
    session: AsyncSession, *, step: PipelineStep, jobs: dict[str, Job]
) -> list[Job]:
    """The step's job, or its sweep's jobs, that have not ended."""
    if step.job_id:
        job = jobs.get(step.job_id)
        return [job] if job is not None and not JobStatus(job.status).finished else []
    if step.sweep_id is None:
        return []
    rows = await session.scalars(select(Job).where(Job.sweep_id == step.sweep_id))
    return [j for j in rows.all() if not JobStatus(j.status).finished]
