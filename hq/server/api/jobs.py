"""Jobs: submit (optionally waiting for the end), list, read, logs, cancel."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import JobStatus, Page
from hq.schemas.jobs import MAX_WAIT_SECONDS, JobCreate, JobDetail, JobRead, JobResult
from hq.server.db.models import Job, JobLog
from hq.server.deps import SessionDep, SettingsDep, Submitter, Viewer
from hq.server.services import jobs as job_service

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])
FOLLOW_POLL_SECONDS = 1.0
LOG_PAGE_LINES = 10_000


@router.post("", status_code=status.HTTP_201_CREATED, response_model=JobRead)
async def submit_job(
    body: JobCreate,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: Submitter,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
    wait: Annotated[
        float | None,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait for the job to end"),
    ] = None,
) -> JobRead:
    async with session.begin():
        job, created = await job_service.submit(
            session,
            body=body,
            created_by=principal.token_id,
            idempotency_key=idempotency_key,
            offline_seconds=settings.agent_offline_seconds,
            default_timeout_s=settings.default_timeout_seconds,
        )
        read = job_service.to_read(job)
    if not created:
        response.status_code = status.HTTP_200_OK
    if wait:
        read = await _wait_for_end(request, job_id=read.id, timeout=wait) or read
    return read


async def _wait_for_end(request: Request, *, job_id: str, timeout: float) -> JobRead | None:
    notifier = request.app.state.notifier
    deadline = time.monotonic() + timeout
    while True:
        ev = notifier.watch("done")
        async with request.app.state.sessionmaker() as session:
            job = await job_service.get_job_row(session, job_id=job_id)
            read = job_service.to_read(job)
        remaining = deadline - time.monotonic()
        if (
            read.status.finished
            or remaining <= 0
            or notifier.closing
            or await request.is_disconnected()
        ):
            return read
        await notifier.wait(ev, min(remaining, 5.0))


@router.get("", response_model=Page[JobRead])
async def list_jobs(
    session: SessionDep,
    _: Viewer,
    status_: Annotated[str | None, Query(alias="status", description="comma-separated")] = None,
    script: str | None = None,
    sweep: str | None = None,
    queue: str | None = None,
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    sort: str = "-created_at",
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    cursor: str | None = None,
) -> Page[JobRead]:
    for name, value in (("created_after", created_after), ("created_before", created_before)):
        if value is not None and value.tzinfo is None:
            raise errors.ValidationFailed(
                f"{name}: give a timezone, e.g. 2026-01-01T00:00:00Z", field=name
            )
    statuses = [s for s in (status_ or "").split(",") if s]
    rows, next_cursor = await job_service.list_jobs(
        session,
        statuses=statuses,
        script=script,
        sweep=sweep,
        queue_name=queue,
        created_after=created_after,
        created_before=created_before,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )
    return Page[JobRead](items=[job_service.to_read(r) for r in rows], next_cursor=next_cursor)


@router.get("/{job_id}", response_model=JobDetail)
async def get_job(
    job_id: str,
    request: Request,
    session: SessionDep,
    _: Viewer,
    wait: Annotated[
        float | None,
        Query(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait for the job to end"),
    ] = None,
) -> JobDetail:
    if wait:
        await _wait_for_end(request, job_id=job_id, timeout=wait)
    return await job_service.get_detail(session, job_id=job_id)


@router.get("/{job_id}/result", response_model=JobResult)
async def get_result(job_id: str, session: SessionDep, _: Viewer) -> JobResult:
    return await job_service.get_result(session, job_id=job_id)


@router.post("/{job_id}/cancel", response_model=JobRead)
async def cancel_job(job_id: str, session: SessionDep, _: Submitter) -> JobRead:
    async with session.begin():
        return job_service.to_read(await job_service.cancel(session, job_id=job_id))


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_logs(
    job_id: str, request: Request, session: SessionDep, __: Viewer, follow: bool = False
) -> Response:
    """The job's log text; ``follow=1`` streams new lines until the job ends."""
    await job_service.get_job_row(session, job_id=job_id)
    if not follow:
        text: list[str] = []
        last, lines = await _log_lines(session, job_id=job_id, after_id=0)
        while lines:  # page by page: all of it, not only the first page
            text.extend(lines)
            last, lines = await _log_lines(session, job_id=job_id, after_id=last)
        return PlainTextResponse("".join(text))
    # The stream uses its own short sessions; this one must not hold a transaction (on SQLite,
    # a BEGIN IMMEDIATE write lock) while the stream runs, or the stream waits on itself.
    await session.close()
    return StreamingResponse(_follow(request, job_id=job_id), media_type="text/plain")


async def _log_lines(session: AsyncSession, *, job_id: str, after_id: int) -> tuple[int, list[str]]:
    rows = (
        await session.execute(
            select(JobLog.id, JobLog.text)
            .where(JobLog.job_id == job_id, JobLog.id > after_id)
            .order_by(JobLog.id)
            .limit(LOG_PAGE_LINES)
        )
    ).all()
    last = rows[-1][0] if rows else after_id
    return last, [text if text.endswith("\n") else text + "\n" for _, text in rows]


async def _follow(request: Request, *, job_id: str) -> AsyncIterator[str]:
    notifier = request.app.state.notifier
    last = 0
    while not notifier.closing and not await request.is_disconnected():
        ev = notifier.watch("logs")
        async with request.app.state.sessionmaker() as session:
            last, lines = await _log_lines(session, job_id=job_id, after_id=last)
            job_status = await session.scalar(select(Job.status).where(Job.id == job_id))
        if lines:
            yield "".join(lines)
            continue
        if job_status is None or JobStatus(job_status).finished:
            return
        await notifier.wait(ev, FOLLOW_POLL_SECONDS)
