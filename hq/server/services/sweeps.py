"""Sweeps: expand a grid and/or seeded random draws, times repeats, into jobs."""

from __future__ import annotations

import itertools
import math
import random
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import FINISHED_STATUSES, JobStatus, Page
from hq.schemas.jobs import JobCreate
from hq.schemas.sweeps import MAX_SWEEP_JOBS, RandomSpec, ResultsTable, SweepCreate, SweepRead
from hq.server import paging
from hq.server.db.models import Job, Sweep
from hq.server.services import limits, submissions
from hq.server.services import results as result_service
from hq.server.services.results import ResultsQuery

SWEEP_SORT = "-created_at"  # the one order sweeps are listed in; cursors carry it


def _draw(spec: RandomSpec) -> list[dict[str, Any]]:
    rng = random.Random(spec.seed)
    points = []
    for _ in range(spec.n):
        point: dict[str, Any] = {}
        for name in sorted(spec.params):
            p = spec.params[name]
            if p.choices is not None:
                point[name] = rng.choice(p.choices)
                continue
            assert p.low is not None and p.high is not None
            if p.log:
                value = math.exp(rng.uniform(math.log(p.low), math.log(p.high)))
            else:
                value = rng.uniform(p.low, p.high)
            point[name] = round(value) if p.integer else value
        points.append(point)
    return points


def job_count(body: SweepCreate) -> int:
    """How many jobs the sweep expands to (points times repeats), without expanding it."""
    return (
        math.prod(len(v) for v in body.grid.values())
        * (body.random.n if body.random else 1)
        * body.repeats
    )


def expand(body: SweepCreate) -> list[dict[str, Any]]:
    """Every point of the sweep (before repeats): grid x random draws, over the fixed params."""
    names = sorted(body.grid)
    overlap = set(body.grid) & set(body.random.params if body.random else {})
    if overlap:
        raise errors.ValidationFailed(
            f"params {sorted(overlap)} are both in grid and random; choose one", field="random"
        )
    # Count before expanding: a few short axes can multiply past what memory holds.
    total = job_count(body)
    if total > MAX_SWEEP_JOBS:
        raise errors.ValidationFailed(
            f"this sweep expands to {total} jobs; at most {MAX_SWEEP_JOBS}", field="grid"
        )
    grid = [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(body.grid[n] for n in names))
    ] or [{}]
    draws = _draw(body.random) if body.random else [{}]
    return [{**body.params, **g, **d} for g in grid for d in draws]


async def create_sweep(
    session: AsyncSession,
    *,
    body: SweepCreate,
    created_by: str | None,
    offline_seconds: float,
    default_timeout_s: int,
    max_params_bytes: int,
    max_sweep_params_bytes: int,
    pipeline_id: str | None = None,
) -> SweepRead:
    caps = {"max_job_bytes": max_params_bytes, "max_total_bytes": max_sweep_params_bytes}
    if job_count(body) <= MAX_SWEEP_JOBS:  # else ``expand`` says the sweep is too big
        limits.check_sweep_params(body.params, jobs=job_count(body), **caps)
    points = expand(body)
    limits.check_sweep_points(points, repeats=body.repeats, **caps)
    prepared = await submissions.prepare(session, script=body.script, inputs=body.inputs)
    agents = await submissions.live_agents(session, offline_seconds=offline_seconds)
    sweep = Sweep(
        id=str(uuid.uuid4()),
        script_name=prepared.version.script_name,
        script_version=prepared.version.version,
        spec=body.model_dump(mode="json"),
        total=len(points) * body.repeats,
    )
    session.add(sweep)
    template = _template(body)
    submissions.job_resources(prepared.manifest, template)  # a ceiling exceeded: one 422, first
    for i, point in enumerate(points):
        for repeat in range(body.repeats):
            origin = submissions.Origin(
                params=point,
                sweep_id=sweep.id,
                repeat=repeat,
                created_by=created_by,
                pipeline_id=pipeline_id,
            )
            try:
                await submissions.create_job(
                    session,
                    body=template,
                    prepared=prepared,
                    agents=agents,
                    origin=origin,
                    default_timeout_s=default_timeout_s,
                )
            except errors.ValidationFailed as exc:
                raise errors.ValidationFailed(
                    f"sweep point {i} {point}: {exc.message}", field=exc.field
                ) from exc
    await session.flush()
    return await get_sweep(session, sweep_id=sweep.id)


def _template(body: SweepCreate) -> JobCreate:
    """What every job of the sweep shares (its params are the point's)."""
    return JobCreate(
        script=body.script,
        inputs=body.inputs,
        priority=body.priority,
        queue=body.queue,
        labels=body.labels,
        max_attempts=body.max_attempts,
        retry_on=body.retry_on,
        max_retries=body.max_retries,
        timeout_s=body.timeout_s,
        resources=body.resources,
        reuse=body.reuse,
    )


async def _get_row(session: AsyncSession, *, sweep_id: str) -> Sweep:
    sweep = await session.get(Sweep, sweep_id)
    if sweep is None:
        raise errors.NotFound(f"sweep {sweep_id} not found")
    return sweep


async def get_sweep(session: AsyncSession, *, sweep_id: str) -> SweepRead:
    sweep = await _get_row(session, sweep_id=sweep_id)
    return (await _with_counts(session, [sweep]))[0]


async def get_results(session: AsyncSession, *, sweep_id: str) -> ResultsTable:
    """The sweep's params and metrics, one row per job: a sweep fits one page."""
    await _get_row(session, sweep_id=sweep_id)
    return await result_service.results_page(
        session, query=ResultsQuery(sweep_id=sweep_id), limit=MAX_SWEEP_JOBS
    )


async def list_sweeps(
    session: AsyncSession, *, script: str | None, limit: int, cursor: str | None
) -> Page[SweepRead]:
    """Sweeps, newest first, with their counts by status; keyset pages over (created_at, id)."""
    stmt = select(Sweep)
    if script:
        stmt = stmt.where(Sweep.script_name == script)
    if cursor:
        value, last_id = paging.decode_cursor(cursor, sort=SWEEP_SORT, value_types=(datetime,))
        stmt = stmt.where(
            paging.after(Sweep.created_at, Sweep.id, value=value, last_id=last_id, descending=True)
        )
    order = (Sweep.created_at.desc(), Sweep.id.desc())
    rows = (await session.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    page, next_cursor = paging.cut_page(
        rows, limit, sort=SWEEP_SORT, key=lambda s: (s.created_at, s.id)
    )
    return Page[SweepRead](items=await _with_counts(session, page), next_cursor=next_cursor)


async def _with_counts(session: AsyncSession, sweeps: list[Sweep]) -> list[SweepRead]:
    """Each sweep with its jobs counted by status: one grouped query for all of them."""
    counts: dict[str, dict[str, int]] = {s.id: {} for s in sweeps}
    if sweeps:
        grouped = await session.execute(
            select(Job.sweep_id, Job.status, func.count())
            .where(Job.sweep_id.in_(list(counts)))
            .group_by(Job.sweep_id, Job.status)
        )
        for sweep_id, status, n in grouped.all():
            counts[str(sweep_id)][status] = n
    reads = []
    for sweep in sweeps:
        mine = counts[sweep.id]
        done = sum(n for s, n in mine.items() if JobStatus(s) in FINISHED_STATUSES)
        reads.append(SweepRead.from_row(sweep, counts=mine, finished=done == sweep.total))
    return reads
