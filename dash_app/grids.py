"""AG Grid builders: the jobs grid (infinite row model) and plain grids for tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_ag_grid as dag

from dash_app import ids
from dash_app.logic.jobs import MAX_PAGE_ROWS
from dash_app.logic.status import status_cell_style
from dash_app.logic.views import column_defs, table_columns

JOBS_BLOCK_ROWS = 100
MAX_CACHED_BLOCKS = 10  # a live refresh re-asks every cached block: keep it to 1,000 rows
_EQUALS = {
    "filter": "agTextColumnFilter",
    "filterParams": {
        "filterOptions": ["equals"],
        "maxNumConditions": 1,
        "buttons": ["apply", "reset"],
    },
}
_STATUS = {
    "filter": "agTextColumnFilter",
    "filterParams": {
        "filterOptions": ["equals"],
        "maxNumConditions": 6,
        "buttons": ["apply", "reset"],
    },
}
_DATE = {
    "filter": "agDateColumnFilter",
    "filterParams": {
        "filterOptions": ["equals", "greaterThan", "lessThan", "inRange"],
        "maxNumConditions": 1,
        "buttons": ["apply", "reset"],
    },
}

JOB_COLUMNS: list[dict[str, Any]] = [
    {"field": "short_id", "headerName": "job", "sortable": False, "width": 110},
    {"field": "script", "sortable": True, **_EQUALS},
    {"field": "version", "headerName": "v", "sortable": False, "width": 70},
    {"field": "status", "sortable": True, "cellStyle": status_cell_style(), **_STATUS},
    {"field": "queue", "sortable": False, **_EQUALS, "width": 120},
    {"field": "priority", "sortable": True, "width": 100},
    {"field": "attempts", "sortable": False, "width": 100},
    {"field": "created_at", "headerName": "queued", "sortable": True, "width": 175, **_DATE},
    {"field": "finished_at", "headerName": "ended", "sortable": True, "width": 175},
    {"field": "duration_s", "headerName": "run s", "sortable": False, "width": 100},
    {"field": "sweep_id", "headerName": "sweep", "sortable": False, **_EQUALS},
    {"field": "agent", "sortable": False, "width": 110},
    {"field": "params", "sortable": False, "flex": 1, "minWidth": 160},
    {"field": "metrics", "sortable": False, "flex": 1, "minWidth": 160},
]
JOB_LINK_COLUMNS = [c["field"] for c in JOB_COLUMNS]


def jobs_grid() -> dag.AgGrid:
    """Jobs over the paged API: AG Grid asks for blocks, a callback answers from HQ."""
    return dag.AgGrid(
        id=ids.JOBS_GRID,
        rowModelType="infinite",
        columnDefs=JOB_COLUMNS,
        defaultColDef={"resizable": True, "sortable": False, "filter": False, "width": 150},
        getRowId="params.data.id",
        dashGridOptions={
            "cacheBlockSize": JOBS_BLOCK_ROWS,
            "maxBlocksInCache": MAX_CACHED_BLOCKS,
            "maxConcurrentDatasourceRequests": 1,
            "infiniteInitialRowCount": 1,
            "rowSelection": {
                "mode": "multiRow",
                "checkboxes": True,
                "headerCheckbox": False,
                "enableClickSelection": False,
            },
            "rowBuffer": 0,
        },
        style={"height": "70vh"},
    )


def table_grid(
    grid_id: Any,
    rows: Sequence[dict[str, Any]],
    *,
    height: str = "320px",
    columns: Sequence[str] | None = None,
    csv_name: str | None = None,
) -> dag.AgGrid:
    """A client-side grid for a small table (a result table, versions, a preview)."""
    cols = list(columns) if columns is not None else table_columns(rows)
    return dag.AgGrid(
        id=grid_id,
        rowData=list(rows),
        columnDefs=column_defs(cols, rows),
        defaultColDef={
            "resizable": True,
            "sortable": True,
            "filter": True,
            "minWidth": 90,
            "flex": 1,
        },
        dashGridOptions={
            "pagination": len(rows) > MAX_PAGE_ROWS,
            "paginationPageSize": 100,
            "domLayout": "normal",
        },
        csvExportParams={"fileName": csv_name or "table.csv"},
        style={"height": height},
    )
