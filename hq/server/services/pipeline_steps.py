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

from hq.schemas.common import FINISHED_STATUSES, JobStatus
from hq.schemas.jobs import InputRef
from hq.schemas.pipelines import FromStep, PipelineStatus, StepSpec
from hq.server import queue
from hq.server.db.models import Artifact, Job, Pipeline, PipelineStep
from hq.server.db.types import utcnow
from hq.server.services import datasets as dataset_service
from hq.server.services import submissions
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
    by_id = {j.id: j for j in jobs if j.pipeline_id is not None}
    if not by_id:
        return
    steps = (
        await session.scalars(select(PipelineStep).where(PipelineStep.job_id.in_(list(by_id))))
    ).all()
    for step in steps:
        await _step_ended(session, step=step, job=by_id[str(step.job_id)])


async def load(
    session: AsyncSession, *, pipeline_id: str
) -> tuple[list[PipelineStep], dict[str, Job]]:
    """A pipeline's steps (in spec order) and their jobs by id."""
    steps = list(
        (
            await session.scalars(
                select(PipelineStep)
                .where(PipelineStep.pipeline_id == pipeline_id)
                .order_by(PipelineStep.position)
            )
        ).all()
    )
    ids = [s.job_id for s in steps if s.job_id]
    jobs = {j.id: j for j in (await session.scalars(select(Job).where(Job.id.in_(ids)))).all()}
    return steps, jobs


async def _step_ended(session: AsyncSession, *, step: PipelineStep, job: Job) -> None:
    steps, jobs = await load(session, pipeline_id=step.pipeline_id)
    jobs[job.id] = job
    if job.status == JobStatus.succeeded.value:
        for nxt in steps:
            if step.name in nxt.needs and _ready(nxt, steps=steps, jobs=jobs):
                await start_step(session, step=nxt, steps=steps, jobs=jobs)
    else:
        reason = f"upstream step {step.name} {job.status} (job {job.id})"
        await _cancel_dependants(session, root=step.name, steps=steps, jobs=jobs, reason=reason)
    await settle_pipeline(session, pipeline_id=step.pipeline_id)


def _ready(step: PipelineStep, *, steps: list[PipelineStep], jobs: dict[str, Job]) -> bool:
    job = jobs.get(str(step.job_id))
    if job is None or job.status != JobStatus.waiting.value:
        return False
    by_name = {s.name: s for s in steps}
    return all(jobs[str(by_name[n].job_id)].status == JobStatus.succeeded.value for n in step.needs)


async def start_step(
    session: AsyncSession, *, step: PipelineStep, steps: list[PipelineStep], jobs: dict[str, Job]
) -> None:
    """Resolve the step's ``from`` inputs and reuse or queue its job (for submit and advance)."""
    job = jobs[str(step.job_id)]
    spec = StepSpec.model_validate(step.spec)
    by_name = {s.name: s for s in steps}
    refs: dict[str, InputRef] = {}
    try:
        for input_name, ref in spec.inputs.items():
            if isinstance(ref, FromStep):
                upstream = jobs[str(by_name[ref.step].job_id)]
                refs[input_name] = await _artifact_input(session, job=upstream, ref=ref)
    except StepUnresolved as exc:
        await queue.finish(session, job=job, status=JobStatus.failed, reason=str(exc))
        return
    await submissions.start_waiting(session, job=job, inputs=refs)


async def _artifact_input(session: AsyncSession, *, job: Job, ref: FromStep) -> InputRef:
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
    store = session.info.get(STORE_KEY)
    if not isinstance(store, ObjectStore):
        raise StepUnresolved("this HQ process has no object store to read step outputs from")
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
    """Cancel the unfinished jobs of every step that reads from ``root``, directly or not."""
    doomed: set[str] = set()
    grew = True
    while grew:
        grew = False
        for s in steps:
            if s.name not in doomed and (root in s.needs or doomed & set(s.needs)):
                doomed.add(s.name)
                grew = True
    ended: list[Job] = []
    for s in steps:
        job = jobs.get(str(s.job_id))
        if s.name in doomed and job is not None and job.status == JobStatus.waiting.value:
            await queue.finish(
                session, job=job, status=JobStatus.cancelled, reason=reason, flush=False
            )
            ended.append(job)
    if ended:
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
    status = derive_status([jobs[str(s.job_id)].status for s in steps])
    pipeline.status = status.value
    if status in (PipelineStatus.queued, PipelineStatus.running):
        return
    pipeline.finished_at = utcnow()
    await session.flush()
    await _pipeline_finished(session, pipeline)


async def _pipeline_finished(session: AsyncSession, pipeline: Pipeline) -> None:
    """A pipeline reached its final status (in the transaction that ended its last step).

    webhooks: call here.
    """
    logger.info("pipeline %s %s", pipeline.id, pipeline.status, extra={"pipeline_id": pipeline.id})
