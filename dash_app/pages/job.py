"""One job: params, inputs, timeline, live logs, metrics, result tables, charts, artifacts."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import dash
from dash import Input, Output, State, callback, ctx, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import (
    error_message,
    forbidden,
    kv,
    message,
    metric_tiles,
    status_badge,
)
from dash_app.components.figures import figure_gallery
from dash_app.components.result_table import ResultTableAIO
from dash_app.grids import table_grid
from dash_app.logic.accounts import allows
from dash_app.logic.charts import figure_from_chart
from dash_app.logic.status import is_finished
from dash_app.logic.views import (
    human_size,
    input_rows,
    job_summary,
    job_view_key,
    log_tail,
    rerun_request,
    timeline,
)
from hq import errors
from hq.schemas.jobs import JobCreate

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path_template="/jobs/<job_id>", title="HQ · job", name="Job"
)

POLL_MS = 1500


def layout(job_id: str | None = None, **_query: Any) -> html.Div:
    can_submit = allows(current_role(), "submitter")
    return html.Div(
        [
            dcc.Store(id=ids.JOB_ID, data=job_id),
            dcc.Store(id=ids.JOB_SEEN),
            dcc.Interval(id=ids.JOB_INTERVAL, interval=POLL_MS),
            html.Div(
                className="toolbar",
                children=[
                    html.H1(f"Job {job_id}"),
                    html.Span(id=ids.JOB_STATUS),
                    html.Button(
                        "Cancel",
                        id=ids.JOB_CANCEL,
                        className="btn danger small",
                        disabled=not can_submit,
                    ),
                    html.Button(
                        "Rerun", id=ids.JOB_RERUN, className="btn small", disabled=not can_submit
                    ),
                ],
            ),
            html.Div(id=ids.JOB_MESSAGE),
            html.Div(
                className="row",
                children=[
                    html.Div([html.H2("Summary"), html.Div(id=ids.JOB_SUMMARY)], className="card"),
                    html.Div(
                        [html.H2("Timeline"), html.Div(id=ids.JOB_TIMELINE)], className="card"
                    ),
                ],
            ),
            html.Div([html.H2("Metrics"), html.Div(id=ids.JOB_METRICS)], className="card"),
            html.Div([html.H2("Charts"), html.Div(id=ids.JOB_CHARTS, className="row")]),
            html.Div([html.H2("Tables"), html.Div(id=ids.JOB_TABLES)]),
            html.Div(
                [html.H2("Logs"), html.Pre(id=ids.JOB_LOGS, className="logs")], className="card"
            ),
            html.Div([html.H2("Artifacts"), html.Div(id=ids.JOB_ARTIFACTS)], className="card"),
        ]
    )


def _summary(job: dict[str, Any]) -> list[Any]:
    sweep = job.get("sweep_id")
    return [
        kv(job_summary(job)),
        dcc.Link("Compare this sweep", href=f"/compare?sweep={sweep}") if sweep else None,
        html.Div(dcc.Link("Open its pipeline", href=f"/pipelines/{pipeline}"))
        if (pipeline := job.get("pipeline_id"))
        else None,
        html.H3("Params", style={"marginTop": "12px"}),
        html.Pre(json.dumps(job.get("params", {}), indent=2, sort_keys=True), className="manifest"),
        html.H3("Inputs"),
        table_grid(ids.JOB_INPUTS_GRID, input_rows(job), height="120px")
        if job.get("inputs")
        else html.Div("No inputs.", className="muted"),
    ]


def _results(result: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    if result is None:
        waiting = html.Div("Shown when the job ends.", className="muted")
        return waiting, waiting, waiting
    tables = result.get("tables", {})
    charts = [
        html.Div(
            [
                dcc.Graph(id=ids.job_chart(i), figure=figure_from_chart(chart, tables, i)),
            ],
            className="card",
        )
        for i, chart in enumerate(result.get("charts", []))
    ]
    grids = [
        ResultTableAIO(aio_id=f"table-{name}", title=name, rows=rows)
        for name, rows in tables.items()
    ]
    return (
        metric_tiles(result.get("metrics", {})),
        charts or html.Div("No charts.", className="muted"),
        grids or html.Div("No tables.", className="muted"),
    )


def _artifacts(job_id: str, artifacts: list[dict[str, Any]]) -> Any:
    if not artifacts:
        return html.Div("No artifacts.", className="muted")
    links = html.Ul(
        [
            html.Li(
                [
                    html.A(
                        a["path"],
                        href=f"/download/jobs/{job_id}/artifacts/{quote(a['path'])}",
                        target="_blank",
                    ),
                    html.Span(
                        f"  {human_size(a['size'])}  sha256 {a['sha256'][:16]}…", className="muted"
                    ),
                ]
            )
            for a in artifacts
        ]
    )
    return [figure_gallery(job_id, artifacts), links]


@callback(
    Output(ids.JOB_LOGS, "children"),
    Output(ids.JOB_SEEN, "data"),
    Output(ids.JOB_STATUS, "children"),
    Output(ids.JOB_SUMMARY, "children"),
    Output(ids.JOB_TIMELINE, "children"),
    Output(ids.JOB_METRICS, "children"),
    Output(ids.JOB_CHARTS, "children"),
    Output(ids.JOB_TABLES, "children"),
    Output(ids.JOB_ARTIFACTS, "children"),
    Output(ids.JOB_INTERVAL, "disabled"),
    Output(ids.JOB_CANCEL, "disabled"),
    Input(ids.JOB_INTERVAL, "n_intervals"),
    State(ids.JOB_ID, "data"),
    State(ids.JOB_SEEN, "data"),
)
def refresh(_ticks: int | None, job_id: str, seen: dict[str, Any] | None) -> tuple[Any, ...]:
    """Poll the job while it runs: logs every time, the rest only when the job changed (so
    grids keep their scroll); once it ended, draw its results and stop polling."""
    try:
        with hq_client() as client:
            job = client.get_job(job_id).model_dump(mode="json")
            logs = log_tail(client.job_logs(job_id)) or "(no output yet)"
            key = job_view_key(job)
            if key == seen:
                return (logs, *([no_update] * 10))
            ended = is_finished(job["status"])
            result = client.job_result(job_id).model_dump(mode="json") if ended else None
            artifacts = [a.model_dump(mode="json") for a in client.list_artifacts(job_id)]
    except errors.HQError as exc:
        return (no_update, no_update, error_message(exc), *([no_update] * 6), True, no_update)
    metrics, charts, tables = _results(result)
    return (
        logs,
        key,
        status_badge(job["status"]),
        _summary(job),
        table_grid(ids.JOB_TIMELINE_GRID, timeline(job), height="240px"),
        metrics,
        charts,
        tables,
        _artifacts(job_id, artifacts),
        ended,
        ended or not allows(current_role(), "submitter"),
    )


@callback(
    Output(ids.JOB_MESSAGE, "children"),
    Output(ids.JOB_INTERVAL, "disabled", allow_duplicate=True),
    Output(ids.URL, "pathname", allow_duplicate=True),
    Input(ids.JOB_CANCEL, "n_clicks"),
    Input(ids.JOB_RERUN, "n_clicks"),
    State(ids.JOB_ID, "data"),
    prevent_initial_call=True,
)
def act(cancel: int | None, rerun: int | None, job_id: str) -> tuple[Any, Any, Any]:
    """Cancel the job, or submit it again and open the new one."""
    if not (cancel or rerun):  # the buttons appearing is not a click
        return no_update, no_update, no_update
    if not allows(current_role(), "submitter"):
        return forbidden("cancel or rerun jobs"), no_update, no_update
    try:
        with hq_client() as client:
            if ctx.triggered_id == ids.JOB_CANCEL:
                job = client.cancel_job(job_id)
                return message(f"Cancel requested ({job.status}).", ok=True), False, no_update
            detail = client.get_job(job_id).model_dump(mode="json")
            new = client.submit_job(JobCreate(**rerun_request(detail)))
    except errors.HQError as exc:
        return error_message(exc), no_update, no_update
    return message(f"Rerun submitted as {new.id}.", ok=True), no_update, f"/jobs/{new.id}"
