"""Jobs: an AG Grid over HQ's paged job listing, sorted and filtered by HQ, live while jobs run."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, clientside_callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import hq_client
from dash_app.components.common import message
from dash_app.grids import JOB_LINK_COLUMNS, jobs_grid
from dash_app.logic.jobs import (
    compare_href,
    fetch_block,
    job_href,
    job_row,
    query_from_request,
    request_identity,
)
from dash_app.logic.status import is_finished
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/jobs", title="HQ · jobs", name="Jobs"
)

LIVE_INTERVAL_MS = 2000


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Jobs"),
            html.Div(
                className="toolbar",
                children=[
                    html.Button("Refresh", id=ids.JOBS_REFRESH, className="btn secondary small"),
                    dcc.Link(
                        "Compare selected",
                        id=ids.JOBS_COMPARE,
                        href="/compare",
                        className="btn small",
                    ),
                    html.Span(
                        "Click a row to open a job; tick boxes to compare; filter status with "
                        "values like 'running, queued'.",
                        className="muted",
                    ),
                ],
            ),
            html.Div(id=ids.JOBS_ERROR),
            dcc.Store(id=ids.JOBS_CURSORS, data={}),
            dcc.Store(id=ids.JOBS_BLOCK),
            dcc.Store(id=ids.JOBS_LIVE, data={}),
            dcc.Interval(id=ids.JOBS_INTERVAL, interval=LIVE_INTERVAL_MS, disabled=True),
            jobs_grid(),
        ]
    )


@callback(
    Output(ids.JOBS_BLOCK, "data"),
    Output(ids.JOBS_CURSORS, "data"),
    Output(ids.JOBS_LIVE, "data"),
    Output(ids.JOBS_ERROR, "children"),
    Input(ids.JOBS_GRID, "getRowsRequest"),
    State(ids.JOBS_CURSORS, "data"),
    State(ids.JOBS_LIVE, "data"),
    prevent_initial_call=True,
)
def load_rows(
    request: dict[str, Any] | None, cursors: dict[str, Any], live: dict[str, Any]
) -> tuple[Any, ...]:
    """One block of rows for AG Grid, from HQ's cursor pages, with the request it answers."""
    if not request:
        return no_update, no_update, no_update, no_update
    asked = request_identity(request)
    empty = {"request": asked, "response": {"rowData": [], "rowCount": 0}}
    try:
        query = query_from_request(request)
    except ValueError as exc:
        return empty, no_update, {}, message(str(exc))
    known = cursors.get("cursors", {}) if cursors.get("key") == query.key else {}
    blocks = live.get("blocks", {}) if live.get("key") == query.key else {}
    with hq_client() as client:

        def fetch(limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
            page = client.list_jobs(sort=query.sort, limit=limit, cursor=cursor, **query.filters)
            return [job.model_dump(mode="json") for job in page.items], page.next_cursor

        try:
            block = fetch_block(
                fetch, cursors=known, start_row=request["startRow"], end_row=request["endRow"]
            )
        except errors.HQError as exc:
            return empty, no_update, {}, message(exc.message)
    rows = [job_row(job) for job in block.rows]
    blocks[str(request["startRow"])] = any(not is_finished(r["status"]) for r in rows)
    response = {"rowData": rows, "rowCount": block.last_row if block.last_row is not None else -1}
    return (
        {"request": asked, "response": response},
        {"key": query.key, "cursors": block.cursors},
        {"key": query.key, "blocks": blocks},
        None,
    )


# dash-ag-grid answers whichever block the grid asked for last: a late answer to an older request
# (the user changed the filter meanwhile) would fill the new block with the old rows. Hand the
# grid only the answer to the request it is waiting for; the newer callback brings its own.
clientside_callback(
    """function(block, current) {
        if (!block || !current) { return window.dash_clientside.no_update; }
        const key = r => JSON.stringify([r.startRow, r.endRow, r.sortModel, r.filterModel]);
        return key(block.request) === key(current) ? block.response
                                                   : window.dash_clientside.no_update;
    }""",
    Output(ids.JOBS_GRID, "getRowsResponse"),
    Input(ids.JOBS_BLOCK, "data"),
    State(ids.JOBS_GRID, "getRowsRequest"),
    prevent_initial_call=True,
)


@callback(Output(ids.JOBS_INTERVAL, "disabled"), Input(ids.JOBS_LIVE, "data"))
def poll_while_running(live: dict[str, Any]) -> bool:
    """Keep refreshing only while a loaded job is queued or running."""
    return not any((live or {}).get("blocks", {}).values())


clientside_callback(
    """function(ticks, clicks) {
        const api = dash_ag_grid.getApi(arguments[2]);
        if (api) { api.refreshInfiniteCache(); }
        return window.dash_clientside.no_update;
    }""",
    Output(ids.JOBS_GRID, "className"),
    Input(ids.JOBS_INTERVAL, "n_intervals"),
    Input(ids.JOBS_REFRESH, "n_clicks"),
    State(ids.JOBS_GRID, "id"),
    prevent_initial_call=True,
)


@callback(
    Output(ids.URL, "pathname", allow_duplicate=True),
    Input(ids.JOBS_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_job(cell: dict[str, Any] | None) -> Any:
    return job_href(cell, JOB_LINK_COLUMNS) or no_update


@callback(
    Output(ids.JOBS_COMPARE, "href"),
    Output(ids.JOBS_COMPARE, "className"),
    Input(ids.JOBS_GRID, "selectedRows"),
)
def compare_selected(selected: list[dict[str, Any]] | None) -> tuple[str, str]:
    href = compare_href(selected)
    return (href, "btn small") if href else ("/compare", "btn small secondary")
