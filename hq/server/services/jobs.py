"""Jobs once submitted: read one, list them, wait for one to end, cancel one."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.common import JobStatus, Page
from hq.schemas.jobs import JOB_SORT_KEYS, JobDetail, JobEvent, JobRead, JobResult
from hq.server import paging, queue
from hq.server.db.models import Job, JobEventRow, JobResultRow
from hq.server.notify import Disconnected, Notifier, ended

WAIT_REQUERY_SECONDS = 5.0  # a wait re-reads the job this often, in case a wake-up was missed


async def get_job_row(session: AsyncSession, *, job_id: str) -> Job:
    """The job's row (for services), or NotFound."""
    job = await session.get(Job, job_id)
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    return job


async def get_job(session: AsyncSession, *, job_id: str) -> JobRead:
    return JobRead.model_validate(await get_job_row(session, job_id=job_id))


async def get_detail(session: AsyncSession, *, job_id: str) -> JobDetail:
    """The job and its timeline."""
    job = await get_job_row(session, job_id=job_id)
    events = (
        await session.scalars(
            select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
        )
    ).all()
    return JobDetail.from_row(job, events=[JobEvent.model_validate(e) for e in events])


async def get_result(session: AsyncSession, *, job_id: str) -> JobResult:
    """Metrics, tables and charts; a reused job shows the result of the job it reused."""
    job = await get_job_row(session, job_id=job_id)
    row = await session.get(JobResultRow, job.reused_from or job.id)
    return JobResult.from_row(
        job,
        job_id=job.id,
        tables=row.tables if row else {},
        charts=row.charts if row else [],
    )


@dataclass(frozen=True)
class Seen:
    """A job as its caller just read it, and the watch for its end taken before that read: the
    wait's first look, already made."""

    job: JobRead
    watch: asyncio.Event


async def wait_for_end(
    *,
    reader: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    job_id: str,
    timeout: float,
    disconnected: Disconnected,
    seen: Seen | None = None,
) -> JobRead:
    """The job once it ended, or as it is after ``timeout`` seconds (or when the caller went
    away, or the server stops). Each look is a short read-only session of its own (``reader``):
    the wait holds no transaction."""
    deadline = time.monotonic() + timeout
    while True:
        if seen is None:
            ev = notifier.watch(ended(job_id))  # before the read: no wake-up is missed
            async with reader() as session:
                read = await get_job(session, job_id=job_id)
        else:
            read, ev, seen = seen.job, seen.watch, None
        remaining = deadline - time.monotonic()
        if read.status.finished or remaining <= 0 or notifier.closing or await disconnected():
            return read
        await notifier.wait(ev, min(remaining, WAIT_REQUERY_SECONDS))


async def cancel(session: AsyncSession, *, job_id: str, owner_token_id: str | None) -> JobRead:
    """Queued: cancelled now. Running: the agent hears it on its next heartbeat and kills.
    ``owner_token_id``: the caller's token, which must be the one that submitted the job
    (None for an admin, who may cancel any job)."""
    job = await session.scalar(select(Job).where(Job.id == job_id).with_for_update())
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    if owner_token_id is not None and job.created_by != owner_token_id:
        raise errors.Forbidden(
            f"job {job_id} was submitted with another token: only that token or an admin may "
            "cancel it"
        )
    if JobStatus(job.status).finished:
        raise errors.Conflict(f"job {job_id} already ended ({job.status}); nothing to cancel")
    if job.status in (JobStatus.queued.value, JobStatus.waiting.value):
        await queue.finish(
            session,
            job=job,
            status=JobStatus.cancelled,
            reason=f"cancelled while {job.status}",
            detail=f"while {job.status}",
        )
    elif not job.cancel_requested:
        job.cancel_requested = True
        session.add(
            JobEventRow(
                job_id=job.id, kind="cancel_requested", attempt=job.attempts, agent_id=job.agent_id
            )
        )
        await session.flush()
    return JobRead.model_validate(job)


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


def _check_listing(*, sort: str, statuses: list[str]) -> None:
    if sort.lstrip("-") not in SORT_COLUMNS:
        raise errors.ValidationFailed(
            f"unknown sort key {sort!r}; use one of: {', '.join(JOB_SORT_KEYS)}", field="sort"
        )
    for status in statuses:
        if status not in JobStatus.__members__:
            raise errors.ValidationFailed(
                f"unknown status {status!r}; use: {', '.join(JobStatus)}", field="status"
            )


def _after_finished(
    value: datetime | None, last_id: str, *, descending: bool
) -> ColumnElement[bool]:
    """Rows after (value, last_id) in finished_at order, unfinished jobs (NULL) last of all:
    written without COALESCE, so that ix_jobs_finished serves the order."""
    unfinished = Job.finished_at.is_(None)
    if value is None:
        if descending:  # the unfinished come first: the rest of them, then every finished job
            return or_(and_(unfinished, Job.id < last_id), Job.finished_at.is_not(None))
        return and_(unfinished, Job.id > last_id)
    after = paging.after(
        Job.finished_at, Job.id, value=value, last_id=last_id, descending=descending
    )
    return after if descending else or_(after, unfinished)


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
) -> Page[JobRead]:
    """One keyset page of jobs, filtered, in ``sort`` order (``-`` for descending)."""
    _check_listing(sort=sort, statuses=statuses)
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = SORT_COLUMNS[key]
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
        if key == "finished_at":
            stmt = stmt.where(_after_finished(value, last_id, descending=descending))
        else:
            stmt = stmt.where(
                paging.after(column, Job.id, value=value, last_id=last_id, descending=descending)
            )
    order: tuple[UnaryExpression[Any], UnaryExpression[str]] = (
        (column.desc(), Job.id.desc()) if descending else (column.asc(), Job.id.asc())
    )
    if key == "finished_at":  # unfinished jobs sort as if they finish at the end of time
        order = (
            (Job.finished_at.desc().nulls_first(), Job.id.desc())
            if descending
            else (Job.finished_at.asc().nulls_last(), Job.id.asc())
        )
    rows = (await session.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    attribute = "script_name" if key == "script" else key
    page, next_cursor = paging.cut_page(
        rows, limit, sort=sort, key=lambda j: (getattr(j, attribute), j.id)
    )
    return Page[JobRead](items=[JobRead.model_validate(j) for j in page], next_cursor=next_cursor)
