"""Schedules: submitters create, pause, resume and delete their own; viewers read them and
their runs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from hq import errors
from hq.schemas.common import Page
from hq.schemas.schedules import ScheduleCreate, ScheduleRead, ScheduleRunRead
from hq.server.auth import Principal
from hq.server.deps import SessionDep, SettingsDep, Submitter, Viewer
from hq.server.edge.openapi import raises
from hq.server.services import schedules as schedule_service

router = APIRouter(prefix="/api/v1/schedules", tags=["schedules"])
MAX_SCHEDULE_PAGE = 200  # each carries its submit body
MAX_RUN_PAGE = 1000


def _owner(principal: Principal) -> str | None:
    """The token whose schedules the caller may change; None for an admin (any)."""
    return None if principal.is_admin else principal.token_id


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ScheduleRead,
    responses=raises(errors.ValidationFailed),
)
async def create_schedule(
    body: ScheduleCreate, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> ScheduleRead:
    """The body is checked as its first run would be: a body that would fail is a 422 now."""
    async with session.begin():
        return await schedule_service.create_schedule(
            session, body=body, created_by=principal.token_id, settings=settings
        )


@router.get("", response_model=Page[ScheduleRead], responses=raises(errors.BadRequest))
async def list_schedules(
    session: SessionDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_SCHEDULE_PAGE)] = 50,
    cursor: str | None = None,
) -> Page[ScheduleRead]:
    """Schedules, newest first, each with its next slot and its last run."""
    return await schedule_service.list_schedules(session, limit=limit, cursor=cursor)


@router.get("/{schedule_id}", response_model=ScheduleRead)
async def get_schedule(schedule_id: str, session: SessionDep, _: Viewer) -> ScheduleRead:
    return await schedule_service.get_schedule(session, schedule_id=schedule_id)


@router.get(
    "/{schedule_id}/runs", response_model=Page[ScheduleRunRead], responses=raises(errors.BadRequest)
)
async def list_runs(
    schedule_id: str,
    session: SessionDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_RUN_PAGE)] = 100,
    cursor: str | None = None,
) -> Page[ScheduleRunRead]:
    """The slots the schedule fired for, newest first, with the job or sweep each submitted."""
    return await schedule_service.list_runs(
        session, schedule_id=schedule_id, limit=limit, cursor=cursor
    )


@router.post("/{schedule_id}/pause", response_model=ScheduleRead)
async def pause_schedule(
    schedule_id: str, session: SessionDep, principal: Submitter
) -> ScheduleRead:
    async with session.begin():
        return await schedule_service.set_paused(
            session, schedule_id=schedule_id, paused=True, owner_token_id=_owner(principal)
        )


@router.post("/{schedule_id}/resume", response_model=ScheduleRead)
async def resume_schedule(
    schedule_id: str, session: SessionDep, principal: Submitter
) -> ScheduleRead:
    """From the first slot to come: the slots passed while paused are not owed."""
    async with session.begin():
        return await schedule_service.set_paused(
            session, schedule_id=schedule_id, paused=False, owner_token_id=_owner(principal)
        )


@router.delete("/{schedule_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_schedule(schedule_id: str, session: SessionDep, principal: Submitter) -> None:
    """The schedule and its run records; the jobs and sweeps it submitted stay."""
    async with session.begin():
        await schedule_service.delete_schedule(
            session, schedule_id=schedule_id, owner_token_id=_owner(principal)
        )
