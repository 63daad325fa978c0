"""One pipeline: its steps as a graph coloured by state, a table of steps linking to their jobs
or sweeps with the reason a step failed or was cancelled, refreshed until the pipeline ends."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import error_message, forbidden, kv, message, status_badge
from dash_app.logic.accounts import allows
from dash_app.logic.pipeline_graph import figure
from dash_app.logic.pipelines import pipeline_view_key, step_hrefs, step_rows
from dash_app.logic.views import short_time
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path_template="/pipelines/<pipeline_id>", title="HQ · pipeline", name="Pipeline"
)

POLL_MS = 1500
STEP_HEADERS = ("step", "script", "status", "reads from", "job / sweep", "reused", "reason")


def layout(pipeline_id: str | None = None, **_query: Any) -> html.Div:
    can_submit = allows(current_role(), "submitter")
    return html.Div(
        [
            dcc.Store(id=ids.PIPELINE_ID, data=pipeline_id),
            dcc.Store(id=ids.PIPELINE_SEEN),
            dcc.Interval(id=ids.PIPELINE_INTERVAL, interval=POLL_MS),
            html.Div(
                className="toolbar",
                children=[
                    html.H1(f"Pipeline {pipeline_id}", id=ids.PIPELINE_TITLE),
                    html.Span(id=ids.PIPELINE_STATUS),
                    html.Button(
                        "Cancel",
                        id=ids.PIPELINE_CANCEL,
                        className="btn danger small",
                        disabled=not can_submit,
                    ),
                    dcc.Link("All pipelines", href="/pipelines", className="muted"),
                ],
            ),
            html.Div(id=ids.PIPELINE_MESSAGE),
            html.Div(
                [
                    html.H2("Steps"),
                    html.Div(
                        "Each box is a step in its state's colour (a dotted border: reused from "
                        "an earlier job); an arrow points from a step to the steps that read "
                        "its files. Click a step to open its job.",
                        className="muted",
                    ),
                    dcc.Graph(
                        id=ids.PIPELINE_GRAPH,
                        config={"displayModeBar": False},
                        figure=figure([]),
                    ),
                ],
                className="card",
            ),
            html.Div(id=ids.PIPELINE_STEPS, className="card"),
            html.Div(id=ids.PIPELINE_SUMMARY, className="card"),
        ]
    )


def steps_table(pipeline: dict[str, Any]) -> html.Table:
    rows = []
    for row in step_rows(pipeline):
        link = dcc.Link(row["link"], href=row["href"]) if row["href"] else "—"
        rows.append(
            html.Tr(
                [
                    html.Td(html.B(row["name"])),
                    html.Td(row["script"]),
                    html.Td(status_badge(row["status"])),
                    html.Td(row["needs"]),
                    html.Td(link),
                    html.Td(
                        f"reused (job {row['reused_from'][:8]})" if row["reused"] else "",
                        className="muted",
                    ),
                    html.Td(row["reason"], className="reason"),
                ],
                id=f"step-{row['name']}",
            )
        )
    return html.Table(
        [html.Thead(html.Tr([html.Th(h) for h in STEP_HEADERS])), html.Tbody(rows)],
        className="steps",
    )


def summary(pipeline: dict[str, Any]) -> html.Div:
    return html.Div(
        [
            html.H2("Summary"),
            kv(
                [
                    ("id", pipeline["id"]),
                    ("created", short_time(pipeline.get("created_at"))),
                    ("finished", short_time(pipeline.get("finished_at")) or "—"),
                    ("by", pipeline.get("created_by") or "—"),
                    ("reuse", "on" if pipeline.get("reuse", True) else "off"),
                ]
            ),
        ]
    )


@callback(
    Output(ids.PIPELINE_SEEN, "data"),
    Output(ids.PIPELINE_TITLE, "children"),
    Output(ids.PIPELINE_STATUS, "children"),
    Output(ids.PIPELINE_GRAPH, "figure"),
    Output(ids.PIPELINE_STEPS, "children"),
    Output(ids.PIPELINE_SUMMARY, "children"),
    Output(ids.PIPELINE_INTERVAL, "disabled"),
    Output(ids.PIPELINE_CANCEL, "disabled"),
    Input(ids.PIPELINE_INTERVAL, "n_intervals"),
    State(ids.PIPELINE_ID, "data"),
    State(ids.PIPELINE_SEEN, "data"),
)
def refresh(_ticks: int | None, pipeline_id: str, seen: dict[str, Any] | None) -> tuple[Any, ...]:
    """Poll the pipeline while it is not final; redraw only when a step changed."""
    try:
        with hq_client() as client:
            pipeline = client.pipelines.get(pipeline_id).model_dump(mode="json")
    except errors.HQError as exc:
        stop = isinstance(exc, errors.NotFound)
        return (no_update, no_update, error_message(exc), *([no_update] * 3), stop, stop)
    key = pipeline_view_key(pipeline)
    if key == seen:
        return tuple([no_update] * 8)
    ended = pipeline.get("finished_at") is not None
    try:
        graph = figure(pipeline["steps"], hrefs=step_hrefs(pipeline["steps"]))
    except ValueError as exc:
        graph = no_update
        pipeline_error: Any = message(str(exc))
    else:
        pipeline_error = None
    return (
        key,
        f"Pipeline {pipeline['name']}",
        [status_badge(pipeline["status"]), pipeline_error],
        graph,
        steps_table(pipeline),
        summary(pipeline),
        ended,
        ended or not allows(current_role(), "submitter"),
    )


@callback(
    Output(ids.URL, "href", allow_duplicate=True),
    Input(ids.PIPELINE_GRAPH, "clickData"),
    prevent_initial_call=True,
)
def open_step(click: dict[str, Any] | None) -> Any:
    """A click on a step's box opens its job (or its sweep's comparison)."""
    for point in (click or {}).get("points", []):
        data = point.get("customdata")
        if isinstance(data, list) and len(data) == 4 and data[3]:
            return data[3]
    return no_update


@callback(
    Output(ids.PIPELINE_MESSAGE, "children"),
    Output(ids.PIPELINE_INTERVAL, "disabled", allow_duplicate=True),
    Input(ids.PIPELINE_CANCEL, "n_clicks"),
    State(ids.PIPELINE_ID, "data"),
    prevent_initial_call=True,
)
def cancel(clicks: int | None, pipeline_id: str) -> tuple[Any, Any]:
    """Cancel every step that has not ended, then keep polling until the pipeline is final."""
    if not clicks:
        return no_update, no_update
    if not allows(current_role(), "submitter"):
        return forbidden("cancel pipelines"), no_update
    try:
        with hq_client() as client:
            pipeline = client.pipelines.cancel(pipeline_id)
    except errors.HQError as exc:
        return error_message(exc), no_update
    return message(f"Cancel requested ({pipeline.status}).", ok=True), False
