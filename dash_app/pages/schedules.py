"""Schedules: when each fires, its next slot, paused or not, its last run; the selected one's
runs with links to the jobs and sweeps they submitted. Submitters pause and resume them."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import error_message, forbidden, message
from dash_app.logic.accounts import allows
from dash_app.logic.schedules import run_link, schedule_rows
from dash_app.logic.views import column_defs, short_time
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/schedules", title="HQ · schedules", name="Schedules"
)

POLL_MS = 3000
RUNS_SHOWN = 50
COLUMNS = [
    "name",
    "kind",
    "when",
    "next_at",
    "paused",
    "last_run",
    "last_result",
    "skipped",
    "catch_up",
    "id",
]


def _rows() -> list[dict[str, Any]]:
    with hq_client() as client:
        return schedule_rows(client.list_schedules(limit=200).items)


def layout(**_query: Any) -> html.Div:
    can_change = allows(current_role(), "submitter")
    button = "btn small"
    return html.Div(
        [
            html.H1("Schedules"),
            dcc.Interval(id=ids.SCHEDULES_INTERVAL, interval=POLL_MS),
            html.Div(
                className="toolbar",
                children=[
                    html.Button(
                        "Pause", id=ids.SCHEDULES_PAUSE, className=button, disabled=not can_change
                    ),
                    html.Button(
                        "Resume", id=ids.SCHEDULES_RESUME, className=button, disabled=not can_change
                    ),
                    html.Span(
                        "Times are UTC. Select a schedule to see its runs; create one with "
                        "`hq schedule create`.",
                        className="muted",
                    ),
                ],
            ),
            html.Div(id=ids.SCHEDULES_MESSAGE),
            dag.AgGrid(
                id=ids.SCHEDULES_GRID,
                rowData=[],
                columnDefs=column_defs(COLUMNS),
                getRowId="params.data.id",
                defaultColDef={"resizable": True, "sortable": True, "filter": True},
                dashGridOptions={
                    "rowSelection": {"mode": "singleRow", "enableClickSelection": True}
                },
                style={"height": "40vh"},
            ),
            html.H2("Runs"),
            html.Div(id=ids.SCHEDULES_RUNS, children=message("Select a schedule.")),
        ]
    )


@callback(
    Output(ids.SCHEDULES_GRID, "rowData"),
    Output(ids.SCHEDULES_MESSAGE, "children"),
    Input(ids.SCHEDULES_INTERVAL, "n_intervals"),
)
def refresh(_ticks: int | None) -> tuple[Any, Any]:
    try:
        return _rows(), None
    except errors.HQError as exc:
        return no_update, error_message(exc)


@callback(
    Output(ids.SCHEDULES_RUNS, "children"),
    Input(ids.SCHEDULES_GRID, "selectedRows"),
    Input(ids.SCHEDULES_INTERVAL, "n_intervals"),
)
def runs(selected: list[dict[str, Any]] | None, _ticks: int | None) -> Any:
    """The selected schedule's latest runs, newest first, each linking to what it made."""
    if not selected:
        return message("Select a schedule.")
    try:
        with hq_client() as client:
            page = client.schedule_runs(selected[0]["id"], limit=RUNS_SHOWN)
    except errors.HQError as exc:
        return error_message(exc)
    if not page.items:
        return message(f"{selected[0]['name']} has not fired yet.")
    body = []
    for run in page.items:
        link = run_link(run)
        made = dcc.Link(link[0], href=link[1]) if link else ""
        body.append(
            html.Tr(
                [
                    html.Td(short_time(run.slot_at.isoformat())),
                    html.Td(short_time(run.fired_at.isoformat())),
                    html.Td(made),
                    html.Td(run.error or ""),
                ]
            )
        )
    head = html.Tr([html.Th(h) for h in ("slot", "fired", "submitted", "error")])
    return html.Table([html.Thead(head), html.Tbody(body)], className="table")


@callback(
    Output(ids.SCHEDULES_MESSAGE, "children", allow_duplicate=True),
    Output(ids.SCHEDULES_GRID, "rowData", allow_duplicate=True),
    Input(ids.SCHEDULES_PAUSE, "n_clicks"),
    Input(ids.SCHEDULES_RESUME, "n_clicks"),
    State(ids.SCHEDULES_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def pause_or_resume(
    _pause: int | None, _resume: int | None, selected: list[dict[str, Any]] | None
) -> tuple[Any, Any]:
    pressed = dash.ctx.triggered_id
    if pressed not in (ids.SCHEDULES_PAUSE, ids.SCHEDULES_RESUME) or not (_pause or _resume):
        return no_update, no_update
    if not allows(current_role(), "submitter"):
        return forbidden("pause or resume schedules"), no_update
    if not selected:
        return message("Select a schedule first."), no_update
    try:
        with hq_client() as client:
            if pressed == ids.SCHEDULES_PAUSE:
                done = client.pause_schedule(selected[0]["id"])
            else:
                done = client.resume_schedule(selected[0]["id"])
        state = "paused" if done.paused else "resumed"
        return message(f"{done.name} {state}.", ok=True), _rows()
    except errors.HQError as exc:
        return error_message(exc), no_update
