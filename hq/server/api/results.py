"""``GET /api/v1/results``: the flat table of params and metrics, as JSON pages or one CSV."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.schemas.sweeps import ResultsTable
from hq.server.deps import SessionDep, Viewer
from hq.server.services import results as result_service
from hq.server.services.results import Columns, Key, ResultsQuery

router = APIRouter(prefix="/api/v1/results", tags=["results"])


@router.get("", response_model=ResultsTable, responses={200: {"content": {"text/csv": {}}}})
async def results(
    request: Request,
    session: SessionDep,
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
    async with session.begin():
        upto = await result_service.newest_key(session, query=query)
    name = script or sweep or "jobs"
    return StreamingResponse(
        _csv(request.app.state.sessionmaker, query=query, upto=upto, limit=limit),
        media_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


async def _csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    query: ResultsQuery,
    upto: Key | None,
    limit: int | None,
) -> AsyncIterator[str]:
    """Two passes over the same rows, a short transaction per batch (on SQLite every
    transaction holds the write lock): the column names first, then the rows."""
    columns = Columns()
    async for rows in _batches(sessionmaker, query=query, upto=upto, limit=limit):
        columns.add(rows)
    yield result_service.csv_header(columns)
    async for rows in _batches(sessionmaker, query=query, upto=upto, limit=limit):
        yield result_service.csv_rows(columns, rows)


async def _batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    query: ResultsQuery,
    upto: Key | None,
    limit: int | None,
) -> AsyncIterator[list[Row[Any]]]:
    if upto is None:
        return
    after: Key | None = None
    left = limit
    while left is None or left > 0:
        size = min(left or result_service.CSV_BATCH_ROWS, result_service.CSV_BATCH_ROWS)
        async with sessionmaker() as session, session.begin():
            rows = list(
                await result_service.fetch_rows(
                    session, query=query, after=after, upto=upto, limit=size
                )
            )
        if not rows:
            return
        yield rows
        after = result_service.key_of(rows[-1])
        if left is not None:
            left -= len(rows)
        if len(rows) < size:
            return
