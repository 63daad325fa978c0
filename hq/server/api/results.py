"""``GET /api/v1/results``: the flat table of params and metrics, as JSON pages or one CSV."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from hq import errors
from hq.schemas.sweeps import ResultsTable
from hq.server.deps import ReaderDep, SessionDep, Viewer
from hq.server.edge.openapi import raises
from hq.server.services import results as result_service
from hq.server.services.results import ResultsQuery

router = APIRouter(prefix="/api/v1/results", tags=["results"])


@router.get(
    "",
    response_model=ResultsTable,
    responses={200: {"content": {"text/csv": {}}}, **raises(errors.BadRequest)},
)
async def results(
    session: SessionDep,
    reader: ReaderDep,
    _: Viewer,
    script: str | None = None,
    sweep: str | None = None,
    jobs: Annotated[str | None, Query(description="comma-separated job ids")] = None,
    status: Annotated[str | None, Query(description="comma-separated")] = None,
    format: Literal["json", "csv"] = "json",
    limit: Annotated[
        int | None,
        Query(
            ge=1,
            le=result_service.MAX_PAGE_ROWS,
            description="JSON: rows in this page (default 10,000); CSV: at most this many "
            "rows (default: every row)",
        ),
    ] = None,
    cursor: Annotated[
        str | None, Query(description="JSON: next_cursor of the previous page")
    ] = None,
) -> ResultsTable | StreamingResponse:
    """Oldest job first. JSON answers one page and ``next_cursor`` while more rows remain; CSV
    streams the whole table (the rows that existed when the download began)."""
    query = ResultsQuery(
        script=script,
        sweep_id=sweep,
        job_ids=[j for j in (jobs or "").split(",") if j] or None,
        statuses=[s for s in (status or "").split(",") if s] or None,
    ).check()
    if format == "json":
        async with session.begin():
            return await result_service.results_page(
                session,
                query=query,
                limit=limit or result_service.DEFAULT_PAGE_ROWS,
                cursor=cursor,
            )
    stream = await result_service.csv_download(sessionmaker=reader, query=query, limit=limit)
    name = script or sweep or "jobs"
    return StreamingResponse(
        stream,
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )
