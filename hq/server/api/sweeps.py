"""Sweeps and their results table."""

from __future__ import annotations

from fastapi import APIRouter, status

from hq.schemas.sweeps import MAX_SWEEP_JOBS, ResultsTable, SweepCreate, SweepRead
from hq.server.deps import SessionDep, SettingsDep, Submitter, Viewer
from hq.server.services import results as result_service
from hq.server.services import sweeps as sweep_service
from hq.server.services.results import ResultsQuery

router = APIRouter(prefix="/api/v1/sweeps", tags=["sweeps"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=SweepRead)
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
        )


@router.get("/{sweep_id}", response_model=SweepRead)
async def get_sweep(sweep_id: str, session: SessionDep, _: Viewer) -> SweepRead:
    return await sweep_service.get_sweep(session, sweep_id=sweep_id)


@router.get("/{sweep_id}/results", response_model=ResultsTable)
async def sweep_results(sweep_id: str, session: SessionDep, _: Viewer) -> ResultsTable:
    await sweep_service.get_sweep(session, sweep_id=sweep_id)
    return await result_service.results_page(  # a sweep fits one page
        session, query=ResultsQuery(sweep_id=sweep_id), limit=MAX_SWEEP_JOBS
    )
