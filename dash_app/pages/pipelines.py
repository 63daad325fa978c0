"""Pipelines: the newest pipelines in an AG Grid, live while any of them is not final."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import hq_client
from dash_app.components.common import error_message
from dash_app.logic.pipelines import pipeline_href, pipeline_row
from dash_app.logic.status import status_cell_style
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/pipelines", title="HQ · pipelines", name="Pipelines"
)

LIVE_INTERVAL_MS = 2000
PAGE_SIZE = 100
# the newest 200 (each carries its steps and is re-read every poll); older ones by id
MAX_ROWS = 200

COLUMNS: list[dict[str, Any]] = [
    {"field": "name", "headerName": "name", "flex": 1, "minWidth": 180},
    {"field": "status", "headerName": "status", "cellStyle": status_cell_style(), "width": 130},
    {
        "field": "steps",
        "headerName": "steps done",
        "width": 120,
        "sortable": False,
        "headerTooltip": "steps that succeeded (reused ones too) / all steps",
    },
    {"field": "created_at", "headerName": "created", "width": 180},
    {"field": "finished_at", "headerName": "finished", "width": 180},
    {"field": "created_by", "headerName": "by", "width": 120},
    {"field": "id", "headerName": "id", "width": 300},
]


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Pipelines"),
            html.Div(
                className="toolbar",
                children=[
                    html.Button(
                        "Refresh", id=ids.PIPELINES_REFRESH, className="btn secondary small"
                    ),
                    html.Span(
                        "Click a row to open a pipeline. Submit one with "
                        "'hq pipeline submit FILE.yaml'.",
                        className="muted",
                    ),
                ],
            ),
            html.Div(id=ids.PIPELINES_ERROR),
            dcc.Interval(id=ids.PIPELINES_INTERVAL, interval=LIVE_INTERVAL_MS, disabled=True),
            dag.AgGrid(
                id=ids.PIPELINES_GRID,
                rowData=[],
                columnDefs=COLUMNS,
                defaultColDef={"resizable": True, "sortable": True, "filter": True},
                getRowId="params.data.id",
                dashGridOptions={"pagination": True, "paginationPageSize": 50},
                style={"height": "70vh"},
            ),
        ]
    )


def newest_pipelines() -> list[dict[str, Any]]:
    """Up to MAX_ROWS pipelines, newest first, following HQ's cursor pages."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    with hq_client() as client:
        while len(rows) < MAX_ROWS:
            page = client.pipelines.list(limit=PAGE_SIZE, cursor=cursor)
            rows += [pipeline_row(p.model_dump(mode="json")) for p in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    return rows[:MAX_ROWS]


@callback(
    Output(ids.PIPELINES_GRID, "rowData"),
    Output(ids.PIPELINES_INTERVAL, "disabled"),
    Output(ids.PIPELINES_ERROR, "children"),
    Input(ids.PIPELINES_INTERVAL, "n_intervals"),
    Input(ids.PIPELINES_REFRESH, "n_clicks"),
)
def load(_ticks: int | None, _clicks: int | None) -> tuple[Any, bool, Any]:
    """The rows (by id, so the grid keeps its place); poll while any pipeline is not final."""
    try:
        rows = newest_pipelines()
    except errors.HQError as exc:
        return no_update, True, error_message(exc)
    live = any(not r["finished_at"] for r in rows)
    return rows, not live, None


@callback(
    Output(ids.URL, "pathname", allow_duplicate=True),
    Input(ids.PIPELINES_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_pipeline(cell: dict[str, Any] | None) -> Any:
    row_id = (cell or {}).get("rowId")
    return pipeline_href({"id": row_id}) or no_update
