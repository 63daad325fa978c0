"""``GET /api/v1/results``: the flat table of params and metrics, as JSON or CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from hq.schemas.sweeps import ResultsTable
from hq.server.deps import SessionDep, Viewer
from hq.server.services import results as result_service

router = APIRouter(prefix="/api/v1/results", tags=["results"])


@router.get("", response_model=ResultsTable, responses={200: {"content": {"text/csv": {}}}})
async def results(
    session: SessionDep,
    _: Viewer,
    script: str | None = None,
    sweep: str | None = None,
    jobs: Annotated[str | None, Query(description="comma-separated job ids")] = None,
    status: Annotated[str | None, Query(description="comma-separated")] = None,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[int, Query(ge=1, le=result_service.MAX_RESULT_ROWS)] = 10_000,
) -> ResultsTable | Response:
    table = await result_service.results_table(
        session,
        script=script,
        sweep_id=sweep,
        job_ids=[j for j in (jobs or "").split(",") if j] or None,
        statuses=[s for s in (status or "").split(",") if s] or None,
        limit=limit,
    )
    if format == "csv":
        name = script or sweep or "jobs"
        return Response(
            result_service.to_csv(table),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return table
