"""Compare a sweep or selected jobs: one params+metrics table, and linearity, variance and
parallel-coordinates charts drawn from it."""

from __future__ import annotations

from typing import Any

import dash
import plotly.graph_objects as go
from dash import Input, Output, State, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import hq_client
from dash_app.components.common import error_message, message
from dash_app.components.result_table import ResultTableAIO
from dash_app.grids import table_grid
from dash_app.logic.charts import error_figure
from dash_app.logic.compare import (
    CompareTable,
    box_figure,
    group_by_setting,
    merge_tables,
    numeric_params,
    parallel_figure,
    parse_job_ids,
    setting_params,
    varying_params,
)
from dash_app.logic.fit import scatter_with_fit
from dash_app.logic.views import column_defs
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/compare", title="HQ · compare", name="Compare"
)

POLL_MS = 3000
TABLE_ID = "compare"


def layout(
    sweep: str | None = None, jobs: str | None = None, scripts: str | None = None, **_query: Any
) -> html.Div:
    job_ids = parse_job_ids(jobs)
    source = {"sweep": sweep, "jobs": job_ids, "scripts": parse_job_ids(scripts)}
    if not sweep and len(job_ids) < 2:
        return _pick_a_sweep()
    title = f"Sweep {sweep}" if sweep else f"{len(job_ids)} jobs"
    return html.Div(
        [
            html.H1(f"Compare: {title}"),
            dcc.Store(id=ids.COMPARE_SOURCE, data=source),
            dcc.Store(id=ids.COMPARE_DATA),
            dcc.Interval(id=ids.COMPARE_INTERVAL, interval=POLL_MS),
            html.Div(id=ids.COMPARE_MESSAGE),
            html.Div(
                className="toolbar",
                children=[
                    html.Label("param (x)"),
                    dcc.Dropdown(id=ids.COMPARE_X, clearable=False, style={"width": "220px"}),
                    html.Label("metric"),
                    dcc.Dropdown(id=ids.COMPARE_METRIC, clearable=False, style={"width": "220px"}),
                ],
            ),
            html.Div(
                className="row",
                children=[
                    html.Div(dcc.Graph(id=ids.COMPARE_SCATTER), className="card"),
                    html.Div(dcc.Graph(id=ids.COMPARE_BOX), className="card"),
                ],
            ),
            html.Div(dcc.Graph(id=ids.COMPARE_PARALLEL), className="card"),
            ResultTableAIO(
                aio_id=TABLE_ID, title="Params and metrics", rows=[], height="400px", count=False
            ),
        ]
    )


RECENT_SWEEPS = 100


def _pick_a_sweep() -> html.Div:
    """The landing page: recent sweeps to open, and how to compare chosen jobs instead."""
    intro = html.P(
        "Open a sweep below, or tick two or more jobs on the Jobs page and press "
        "'Compare selected'.",
        className="muted",
    )
    try:
        with hq_client() as client:
            sweeps = client.list_sweeps(limit=RECENT_SWEEPS).items
    except errors.HQError as exc:
        return html.Div([html.H1("Compare"), intro, error_message(exc)])
    rows = [
        {
            "sweep": s.id,
            "script": f"{s.script}@{s.script_version}",
            "jobs": s.total,
            "status": s.counts_text,
            "created (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M:%S"),
        }
        for s in sweeps
    ]
    return html.Div(
        [
            html.H1("Compare"),
            intro,
            html.H2("Recent sweeps"),
            table_grid(ids.COMPARE_SWEEPS_GRID, rows, height="55vh")
            if rows
            else html.P("No sweep yet: submit one from a script's page.", className="muted"),
        ]
    )


@callback(
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.COMPARE_SWEEPS_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_sweep(cell: dict[str, Any] | None) -> Any:
    if cell and cell.get("colId") == "sweep" and cell.get("value"):
        return f"/compare?sweep={cell['value']}"
    return no_update


def _load(source: dict[str, Any]) -> tuple[CompareTable, bool]:
    """The table for the source, and whether it can still change (a sweep still running)."""
    with hq_client() as client:
        if source.get("sweep"):
            sweep = client.get_sweep(source["sweep"])
            table = client.sweep_results(source["sweep"]).model_dump(mode="json")
            return merge_tables([table]), not sweep.finished
        job_ids = source["jobs"]
        scripts = source.get("scripts") or sorted({client.get_job(j).script for j in job_ids})
        tables = [
            client.results(script=s, job_ids=job_ids).model_dump(mode="json") for s in scripts
        ]
        return merge_tables(tables), False


def _choice(options: list[str], current: str | None) -> str | None:
    return current if current in options else (options[0] if options else None)


@callback(
    Output(ids.COMPARE_DATA, "data"),
    Output(ids.COMPARE_INTERVAL, "disabled"),
    Output(ids.COMPARE_MESSAGE, "children"),
    Output(ResultTableAIO.ids.grid(TABLE_ID), "rowData"),
    Output(ResultTableAIO.ids.grid(TABLE_ID), "columnDefs"),
    Output(ids.COMPARE_X, "options"),
    Output(ids.COMPARE_X, "value"),
    Output(ids.COMPARE_METRIC, "options"),
    Output(ids.COMPARE_METRIC, "value"),
    Input(ids.COMPARE_INTERVAL, "n_intervals"),
    State(ids.COMPARE_SOURCE, "data"),
    State(ids.COMPARE_X, "value"),
    State(ids.COMPARE_METRIC, "value"),
)
def load(
    _ticks: int | None, source: dict[str, Any], x: str | None, metric: str | None
) -> tuple[Any, ...]:
    """Fetch the table (again, while a sweep runs) and offer its params and metrics."""
    try:
        table, running = _load(source)
    except errors.HQError as exc:
        return (no_update, True, error_message(exc), *([no_update] * 6))
    params, metrics = numeric_params(table), table.metric_columns
    note = (
        message(f"{len(table.rows)} results so far; the sweep is still running.", ok=True)
        if running
        else None
    )
    data = {"rows": table.rows, "params": setting_params(table), "metrics": metrics}
    return (
        data,
        not running,
        note,
        table.rows,
        column_defs(table.columns, table.rows),
        params,
        _choice(params, x),
        metrics,
        _choice(metrics, metric),
    )


@callback(
    Output(ids.COMPARE_SCATTER, "figure"),
    Output(ids.COMPARE_BOX, "figure"),
    Output(ids.COMPARE_PARALLEL, "figure"),
    Input(ids.COMPARE_DATA, "data"),
    Input(ids.COMPARE_X, "value"),
    Input(ids.COMPARE_METRIC, "value"),
    prevent_initial_call=True,
)
def draw(
    data: dict[str, Any] | None, x: str | None, metric: str | None
) -> tuple[go.Figure, go.Figure, go.Figure]:
    """Linearity (scatter + fit + R²), variance over repeats (box), and parallel coordinates."""
    if not data or not metric:
        empty = error_figure("no results yet")
        return empty, empty, empty
    rows = data["rows"]
    params = varying_params(rows, data["params"])
    scatter = scatter_with_fit(rows, x, metric) if x else error_figure("no numeric param")
    box = box_figure(group_by_setting(rows, params, metric), metric)
    return scatter, box, parallel_figure(rows, params, metric)
