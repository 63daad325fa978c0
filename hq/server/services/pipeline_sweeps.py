"""Sweep steps of a pipeline: a sweep made when the step can start, the step ended when all its
jobs have, and its results table as ``<step>/results.csv`` for the steps that read it.

The table holds the params, the repeat and the metrics of the sweep's succeeded jobs (no job ids
or times), rows in a canonical order, so the same results give the same bytes and the step that
reads them is reused by content like any other.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq.schemas.common import FINISHED_STATUSES, JobStatus
from hq.schemas.jobs import InputRef
from hq.schemas.pipelines import StepSpec
from hq.schemas.sweeps import SweepCreate
from hq.server.db.automation import PipelineStep
from hq.server.db.models import Job
from hq.server.services import datasets as dataset_service
from hq.server.services import sweeps as sweep_service
from hq.server.storage import ObjectStore, dataset_key
from hq.server.storage.describe import Description

LIMITS_KEY = "hq_sweep_limits"  # SweepLimits, in ``session.info`` (set by the app at start-up)
RESULTS_DATASET_PREFIX = "pipeline-results-"


@dataclass(frozen=True)
class SweepLimits:
    """The settings a sweep is made with, for sweeps made when a job ends (not in a request)."""

    offline_seconds: float
    default_timeout_s: int
    max_params_bytes: int
    max_sweep_params_bytes: int


def sweep_body(step: StepSpec, *, inputs: dict[str, str], reuse: bool) -> SweepCreate:
    assert step.sweep is not None
    return SweepCreate(
        script=step.script,
        params=step.params,
        grid=step.sweep.grid,
        random=step.sweep.random,
        repeats=step.sweep.repeats,
        inputs=inputs,
        priority=step.priority,
        queue=step.queue,
        labels=step.labels,
        max_attempts=step.max_attempts,
        timeout_s=step.timeout_s,
        resources=step.resources,
        reuse=reuse,
        max_failures=step.sweep.max_failures,
    )


async def start(
    session: AsyncSession,
    *,
    row: PipelineStep,
    inputs: dict[str, InputRef],
    reuse: bool,
    created_by: str | None,
    limits: SweepLimits,
) -> None:
    """Make the step's sweep (its jobs reused or queued); a sweep all reused ends the step."""
    step = StepSpec.model_validate(row.spec)
    refs = {n: r for n, r in step.inputs.items() if isinstance(r, str)}
    refs.update({n: f"{r.dataset}@{r.version}" for n, r in inputs.items()})
    sweep = await sweep_service.create_sweep(
        session,
        body=sweep_body(step, inputs=refs, reuse=reuse),
        created_by=created_by,
        offline_seconds=limits.offline_seconds,
        default_timeout_s=limits.default_timeout_s,
        max_params_bytes=limits.max_params_bytes,
        max_sweep_params_bytes=limits.max_sweep_params_bytes,
        pipeline_id=row.pipeline_id,
    )
    row.sweep_id = sweep.id
    row.status = JobStatus.running.value
    await session.flush()


async def outcome(session: AsyncSession, *, row: PipelineStep) -> str | None:
    """The step's final status once every job of its sweep has ended (None before): succeeded
    when all succeeded (``require: all``) or at least one (``any``), else failed."""
    counts = dict(
        (
            await session.execute(
                select(Job.status, func.count())
                .where(Job.sweep_id == row.sweep_id)
                .group_by(Job.status)
            )
        ).all()
    )
    if any(JobStatus(s) not in FINISHED_STATUSES for s in counts):
        return None
    ok = counts.get(JobStatus.succeeded.value, 0)
    total = sum(counts.values())
    require = StepSpec.model_validate(row.spec).sweep
    needed = total if require is None or require.require == "all" else 1
    if ok >= max(needed, 1):
        return JobStatus.succeeded.value
    rule = "all" if require is None else require.require
    row.reason = f"sweep {row.sweep_id}: {ok} of {total} jobs succeeded (required: {rule})"
    failed = counts.get(JobStatus.failed.value, 0) + counts.get(JobStatus.timed_out.value, 0)
    return JobStatus.failed.value if failed else JobStatus.cancelled.value


async def results_input(
    session: AsyncSession, *, row: PipelineStep, store: ObjectStore
) -> InputRef:
    """The sweep's results as a CSV dataset version (content addressed), for a reading step."""
    table = await sweep_service.get_results(session, sweep_id=str(row.sweep_id))
    params = [c for c in table.param_columns if c not in ("sweep_id", "job_id")]
    columns = [*params, "repeat", *table.metric_columns]
    ok = [r for r in table.rows if r.get("status") == JobStatus.succeeded.value]
    lines = sorted(json.dumps([r.get(c) for c in columns], default=str) for r in ok)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(json.loads(line) for line in lines)
    data = buffer.getvalue().encode()
    sha = hashlib.sha256(data).hexdigest()
    key = dataset_key(sha)
    if await store.stat(key) is None:
        await _put_bytes(store, key, data)
    version = await dataset_service.add_produced_version(
        session,
        name=RESULTS_DATASET_PREFIX + sha[:40],
        sha256=sha,
        size=len(data),
        filename="results.csv",
        description=Description(content_type="text/csv"),
        produced_by_job_id=None,
    )
    return InputRef.model_validate(version)


async def _put_bytes(store: ObjectStore, key: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory(prefix="hq-results-") as tmp:
        path = Path(tmp) / "results.csv"
        await asyncio.to_thread(path.write_bytes, data)
        await store.put_file(key, path, content_type="text/csv")
