"""A pipeline's steps move on when jobs end: in the transaction that ended them (``queue.ends``).

A step's job exists from submit on, ``waiting`` until every step it reads from has succeeded;
then each ``from`` input is resolved to the upstream job's artifact, registered as a version of
a content-addressed dataset (``pipeline-<sha256[:40]>``, lineage to the job), so the agent
fetches it as any input, and the job is reused by its cache key or queued. A step that fails,
is cancelled or times out cancels every step that depends on it, transitively, with the reason.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import FINISHED_STATUSES, JobStatus
from hq.schemas.jobs import InputRef
from hq.schemas.pipelines import FromStep, PipelineStatus, StepSpec
from hq.server import queue
from hq.server.db.automation import Pipeline, PipelineStep
from hq.server.db.models import Artifact, Job
from hq.server.db.types import utcnow
from hq.server.services import datasets as dataset_service
from hq.server.services import pipeline_sweeps, submissions
from hq.server.services import webhooks as webhook_service
from hq.server.storage import ObjectStore

logger = logging.getLogger(__name__)

STORE_KEY = "hq_store"  # the object store, in ``session.info`` (set by the app at start-up)
ARTIFACT_DATASET_PREFIX = "pipeline-"


class StepUnresolved(Exception):
    """A ``from`` input the upstream job did not write."""


def register() -> None:
    """Listen to jobs' ends (at app start-up; once per process: a repeat changes nothing)."""
    queue.ends.on_end(on_jobs_ended)


async def on_jobs_ended(session: AsyncSession, jobs: Sequence[Job]) -> None:
    """The ``queue.ends`` listener: advance the pipelines whose step jobs these are."""
    mine = [j for j in jobs if j.pipeline_id is not None]
    if not mine:
        return
    # One pipeline moves on in one transaction at a time: two of its jobs ending at once in
    # two transactions would each see the other still running, and neither start what needs
    # both. After the lock, the reads below (fresh statements, rows re-read) see the other's end.
    await session.flush()
    await session.execute(
        select(Pipeline.id)
        .where(Pipeline.id.in_(sorted({str(j.pipeline_id) for j in mine})))
        .order_by(Pipeline.id)
        .with_for_update()
    )
    by_id = {j.id: j for j in mine}
    sweep_ids = {str(j.sweep_id) for j in mine if j.sweep_id}
    stmt = select(PipelineStep).where(PipelineStep.job_id.in_(list(by_id)))
    for step in (await session.scalars(stmt)).all():
        await _step_ended(session, step=step, status=by_id[str(step.job_id)].status)
    if sweep_ids:
        stmt = select(PipelineStep).where(PipelineStep.sweep_id.in_(sorted(sweep_ids)))
        for step in (await session.scalars(stmt)).all():
            await _sweep_job_ended(session, step=step)


async def _sweep_job_ended(session: AsyncSession, *, step: PipelineStep) -> None:
    if step.status != JobStatus.running.value:
        return
    status = await pipeline_sweeps.outcome(session, row=step)
    if status is not None:
        step.status = status
        await session.flush()
        await _step_ended(session, step=step, status=status)


async def load(
    session: AsyncSession, *, pipeline_id: str
) -> tuple[list[PipelineStep], dict[str, Job]]:
    """A pipeline's steps (in spec order) and their jobs by id (sweep steps have none)."""
    steps = list(
        (
            await session.scalars(
                select(PipelineStep)
                .where(PipelineStep.pipeline_id == pipeline_id)
                .order_by(PipelineStep.position)
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    ids = [s.job_id for s in steps if s.job_id]
    fresh = select(Job).where(Job.id.in_(ids)).execution_options(populate_existing=True)
    jobs = {j.id: j for j in (await session.scalars(fresh)).all()}
    return steps, jobs


def step_status(step: PipelineStep, jobs: dict[str, Job]) -> str:
    """A job step's status is its job's; a sweep step keeps its own."""
    job = jobs.get(str(step.job_id)) if step.job_id else None
    return job.status if job is not None else step.status


def _what(step: PipelineStep) -> str:
    return f"job {step.job_id}" if step.job_id else f"sweep {step.sweep_id}"


async def _step_ended(session: AsyncSession, *, step: PipelineStep, status: str) -> None:
    steps, jobs = await load(session, pipeline_id=step.pipeline_id)
    if status == JobStatus.succeeded.value:
        for nxt in steps:
            if step.name in nxt.needs and _ready(nxt, steps=steps, jobs=jobs):
                await start_step(session, step=nxt, steps=steps, jobs=jobs)
    else:
        reason = f"upstream step {step.name} {status} ({_what(step)})"
        await _cancel_dependants(session, root=step.name, steps=steps, jobs=jobs, reason=reason)
    await settle_pipeline(session, pipeline_id=step.pipeline_id)


def _ready(step: PipelineStep, *, steps: list[PipelineStep], jobs: dict[str, Job]) -> bool:
    if step_status(step, jobs) != JobStatus.waiting.value:
        return False
    by_name = {s.name: s for s in steps}
    return all(step_status(by_name[n], jobs) == JobStatus.succeeded.value for n in step.needs)


async def start_step(
    session: AsyncSession, *, step: PipelineStep, steps: list[PipelineStep], jobs: dict[str, Job]
) -> None:
    """Resolve the step's ``from`` inputs and reuse or queue its job, or make its sweep (for
    submit and advance)."""
    spec = StepSpec.model_validate(step.spec)
    by_name = {s.name: s for s in steps}
    refs: dict[str, InputRef] = {}
    try:
        for input_name, ref in spec.inputs.items():
            if isinstance(ref, FromStep):
                refs[input_name] = await _from_input(
                    session, up=by_name[ref.step], ref=ref, jobs=jobs
                )
    except StepUnresolved as exc:
        await _fail_step(session, step=step, jobs=jobs, reason=str(exc))
        return
    if step.job_id:
        await submissions.start_waiting(session, job=jobs[step.job_id], inputs=refs)
        return
    await _start_sweep(session, step=step, inputs=refs)


async def _start_sweep(
    session: AsyncSession, *, step: PipelineStep, inputs: dict[str, InputRef]
) -> None:
    pipeline = await session.get(Pipeline, step.pipeline_id)
    limits = session.info.get(pipeline_sweeps.LIMITS_KEY)
    assert pipeline is not None
    if not isinstance(limits, pipeline_sweeps.SweepLimits):
        await _fail_step(session, step=step, jobs={}, reason="this HQ process cannot make sweeps")
        return
    try:
        await pipeline_sweeps.start(
            session,
            row=step,
            inputs=inputs,
            reuse=pipeline.reuse,
            created_by=pipeline.created_by,
            limits=limits,
        )
    except errors.HQError as exc:
        await _fail_step(session, step=step, jobs={}, reason=f"sweep not made: {exc.message}")
        return
    await _sweep_job_ended(session, step=step)  # every job reused: the step has ended


async def _fail_step(
    session: AsyncSession, *, step: PipelineStep, jobs: dict[str, Job], reason: str
) -> None:
    if step.job_id:
        await queue.finish(session, job=jobs[step.job_id], status=JobStatus.failed, reason=reason)
        return
    step.status, step.reason = JobStatus.failed.value, reason
    await session.flush()
    await _step_ended(session, step=step, status=step.status)


async def _from_input(
    session: AsyncSession, *, up: PipelineStep, ref: FromStep, jobs: dict[str, Job]
) -> InputRef:
    store = session.info.get(STORE_KEY)
    if not isinstance(store, ObjectStore):
        raise StepUnresolved("this HQ process has no object store to read step outputs from")
    if up.job_id is None:
        return await pipeline_sweeps.results_input(session, row=up, store=store)
    return await _artifact_input(session, job=jobs[up.job_id], ref=ref, store=store)


async def _artifact_input(
    session: AsyncSession, *, job: Job, ref: FromStep, store: ObjectStore
) -> InputRef:
    owner = job.reused_from or job.id  # a reused job's files are its original's
    path = ref.path.removeprefix("outputs/")
    artifact = await session.scalar(
        select(Artifact)
        .where(Artifact.job_id == owner, Artifact.path == path)
        .order_by(Artifact.attempt.desc())
        .limit(1)
    )
    if artifact is None:
        known = (await session.scalars(select(Artifact.path).where(Artifact.job_id == owner))).all()
        listed = ", ".join(sorted(f"outputs/{p}" for p in known)[:20]) or "none"
        raise StepUnresolved(
            f"input from {ref.from_}: step {ref.step}'s job {owner} wrote no {ref.path} "
            f"(it wrote: {listed})"
        )
    row = await dataset_service.adopt_artifact(
        session,
        store=store,
        artifact=artifact,
        name=ARTIFACT_DATASET_PREFIX + artifact.sha256[:40],
    )
    return InputRef.model_validate(row)


async def _cancel_dependants(
    session: AsyncSession,
    *,
    root: str,
    steps: list[PipelineStep],
    jobs: dict[str, Job],
    reason: str,
) -> None:
    """Cancel every waiting step that reads from ``root``, directly or not."""
    doomed: set[str] = set()
    grew = True
    while grew:
        grew = False
        for s in steps:
            if s.name not in doomed and (root in s.needs or doomed & set(s.needs)):
                doomed.add(s.name)
                grew = True
    for s in steps:
        if s.name not in doomed or step_status(s, jobs) != JobStatus.waiting.value:
            continue
        if s.job_id:
            await queue.finish(
                session, job=jobs[s.job_id], status=JobStatus.cancelled, reason=reason, flush=False
            )
        else:
            s.status, s.reason = JobStatus.cancelled.value, reason
    await session.flush()


def derive_status(statuses: Sequence[str]) -> PipelineStatus:
    """A pipeline's status from its steps': final once every step is."""
    if all(JobStatus(s) in FINISHED_STATUSES for s in statuses):
        if any(s in (JobStatus.failed.value, JobStatus.timed_out.value) for s in statuses):
            return PipelineStatus.failed
        if any(s == JobStatus.cancelled.value for s in statuses):
            return PipelineStatus.cancelled
        return PipelineStatus.succeeded
    if any(s not in (JobStatus.waiting.value, JobStatus.queued.value) for s in statuses):
        return PipelineStatus.running
    return PipelineStatus.queued


async def settle_pipeline(session: AsyncSession, *, pipeline_id: str) -> None:
    """Record the pipeline's final status and end once all its steps are final."""
    pipeline = await session.get(Pipeline, pipeline_id)
    if pipeline is None or pipeline.finished_at is not None:
        return
    steps, jobs = await load(session, pipeline_id=pipeline_id)
    status = derive_status([step_status(s, jobs) for s in steps])
    pipeline.status = status.value
    if status in (PipelineStatus.queued, PipelineStatus.running):
        return
    pipeline.finished_at = utcnow()
    await session.flush()
    await _pipeline_finished(session, pipeline, steps=steps, jobs=jobs)


async def _pipeline_finished(
    session: AsyncSession, pipeline: Pipeline, *, steps: list[PipelineStep], jobs: dict[str, Job]
) -> None:
    """A pipeline reached its final status (in the transaction that ended its last step): its
    webhooks' deliveries are written in that same transaction."""
    logger.info("pipeline %s %s", pipeline.id, pipeline.status, extra={"pipeline_id": pipeline.id})
    public = str(session.info.get(webhook_service.PUBLIC_URL_KEY, "")).rstrip("/")
    body = {
        "name": pipeline.name,
        "created_at": pipeline.created_at.isoformat(),
        "finished_at": pipeline.finished_at.isoformat() if pipeline.finished_at else None,
        "steps": [
            {
                "name": step.name,
                "status": step_status(step, jobs),
                "reason": step.reason,
                "job_id": step.job_id,
                "sweep_id": step.sweep_id,
            }
            for step in steps
        ],
        "links": {"pipeline": f"{public}/api/v1/pipelines/{pipeline.id}"},
    }
    await webhook_service.pipeline_ended(
        session, pipeline_id=pipeline.id, status=pipeline.status, body=body
    )
