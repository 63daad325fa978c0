"""Jobs: submit (optionally waiting for the end), list, read, logs, cancel."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import PlainTextResponse, StreamingResponse

from hq import errors
from hq.schemas.common import Page, Role
from hq.schemas.jobs import MAX_WAIT_SECONDS, JobCreate, JobDetail, JobRead, JobResult
from hq.schemas.limits import time_in_range
from hq.server import notify
from hq.server.deps import (
    DisconnectedDep,
    NotifierDep,
    ReaderDep,
    SessionDep,
    SettingsDep,
    Submitter,
    Viewer,
)
from hq.server.edge.openapi import raises
from hq.server.services import jobs as job_service
from hq.server.services import logs as log_service
from hq.server.services import submissions
from hq.server.services.limits import check_job_params

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])

WaitQuery = Annotated[
    float | None,
    Query(ge=0, le=MAX_WAIT_SECONDS, description="seconds to wait for the job to end"),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=JobRead,
    responses=raises(errors.NotFound),
)
async def submit_job(
    body: JobCreate,
    response: Response,
    session: SessionDep,
    reader: ReaderDep,
    notifier: NotifierDep,
    disconnected: DisconnectedDep,
    settings: SettingsDep,
    principal: Submitter,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=255)] = None,
    wait: WaitQuery = None,
) -> JobRead:
    check_job_params(body.params, max_bytes=settings.max_params_bytes)
    async with session.begin():
        job, created = await submissions.submit(
            session,
            body=body,
            created_by=principal.token_id,
            idempotency_key=idempotency_key,
            offline_seconds=settings.agent_offline_seconds,
            default_timeout_s=settings.default_timeout_seconds,
        )
        # Before the commit, after which the job can be claimed and end: no end is missed.
        watch = notifier.watch(notify.ended(job.id)) if wait else None
    if not created:
        response.status_code = status.HTTP_200_OK
    if not wait or watch is None:  # the same test twice, for the type checker
        return job
    return await job_service.wait_for_end(  # after the commit: the job must be visible
        reader=reader,
        notifier=notifier,
        job_id=job.id,
        timeout=wait,
        disconnected=disconnected,
        seen=job_service.Seen(job=job, watch=watch),
    )


@router.get("", response_model=Page[JobRead], responses=raises(errors.BadRequest))
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
        if value is None:
            continue
        if value.tzinfo is None:
            raise errors.ValidationFailed(
                f"{name}: give a timezone, e.g. 2026-01-01T00:00:00Z", field=name
            )
        try:
            time_in_range(value)
        except ValueError as exc:  # past year 9999 or before year 1 in UTC: Python cannot hold it
            raise errors.ValidationFailed(f"{name}: {exc}", field=name) from exc
    return await job_service.list_jobs(
        session,
        statuses=[s for s in (status_ or "").split(",") if s],
        script=script,
        sweep=sweep,
        queue_name=queue,
        created_after=created_after,
        created_before=created_before,
        sort=sort,
        limit=limit,
        cursor=cursor,
    )


@router.get("/{job_id}", response_model=JobDetail)
async def get_job(
    job_id: str,
    session: SessionDep,
    reader: ReaderDep,
    notifier: NotifierDep,
    disconnected: DisconnectedDep,
    _: Viewer,
    wait: WaitQuery = None,
) -> JobDetail:
    if wait:
        await job_service.wait_for_end(
            reader=reader,
            notifier=notifier,
            job_id=job_id,
            timeout=wait,
            disconnected=disconnected,
        )
    return await job_service.get_detail(session, job_id=job_id)


@router.get("/{job_id}/result", response_model=JobResult)
async def get_result(job_id: str, session: SessionDep, _: Viewer) -> JobResult:
    return await job_service.get_result(session, job_id=job_id)


@router.post("/{job_id}/cancel", response_model=JobRead)
async def cancel_job(job_id: str, session: SessionDep, principal: Submitter) -> JobRead:
    """A submitter cancels the jobs its token submitted; an admin any job."""
    owner = None if principal.role == Role.admin else principal.token_id
    async with session.begin():
        return await job_service.cancel(session, job_id=job_id, owner_token_id=owner)


@router.get(
    "/{job_id}/logs",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}}},
)
async def get_logs(
    job_id: str,
    session: SessionDep,
    reader: ReaderDep,
    notifier: NotifierDep,
    disconnected: DisconnectedDep,
    __: Viewer,
    follow: bool = False,
) -> Response:
    """The job's log text; ``follow=1`` streams new lines until the job ends."""
    if not follow:
        return PlainTextResponse(await log_service.read_logs(session, job_id=job_id))
    # The stream reads in short sessions of its own; this route's session stays unused.
    lines = await log_service.follow_logs(
        reader=reader, notifier=notifier, job_id=job_id, disconnected=disconnected
    )
    return StreamingResponse(lines, media_type="text/plain")
