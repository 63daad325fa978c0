"""Sweeps and their results table."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from hq import errors
from hq.schemas.common import Page
from hq.schemas.sweeps import ResultsTable, SweepCreate, SweepRead
from hq.server.deps import SessionDep, SettingsDep, Submitter, Viewer
from hq.server.edge.openapi import raises
from hq.server.services import sweeps as sweep_service

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"])
MAX_SWEEP_PAGE = 200  # each carries its spec, whose grid can hold thousands of values


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=SweepRead,
    responses=raises(errors.NotFound),
)
async def create_sweep(
    body: SweepCreate, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> SweepRead:
    async with session.begin():
        return await sweep_service.create_sweep(
            session,
            body=body,
            created_by=principal.token_id,
            offline_seconds=settings.agent_offline_seconds,
            default_timeout_s=settings.default_timeout_seconds,
            max_params_bytes=settings.max_params_bytes,
            max_sweep_params_bytes=settings.max_sweep_params_bytes,
        )


@router.get("", response_model=Page[SweepRead], responses=raises(errors.BadRequest))
async def list_sweeps(
    session: SessionDep,
    _: Viewer,
    script: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_SWEEP_PAGE)] = 50,
    cursor: str | None = None,
) -> Page[SweepRead]:
    """Sweeps, newest first, each with its jobs counted by status."""
    return await sweep_service.list_sweeps(session, script=script, limit=limit, cursor=cursor)


@router.get("/{sweep_id}", response_model=SweepRead)
async def get_sweep(sweep_id: str, session: SessionDep, _: Viewer) -> SweepRead:
    return await sweep_service.get_sweep(session, sweep_id=sweep_id)


@router.get("/{sweep_id}/results", response_model=ResultsTable)
async def sweep_results(sweep_id: str, session: SessionDep, _: Viewer) -> ResultsTable:
    return await sweep_service.get_results(session, sweep_id=sweep_id)
