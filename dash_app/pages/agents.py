"""Agents: status, labels, slots in use, warm containers per script, last heartbeat; admins
can drain one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, State, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import error_message, forbidden, message
from dash_app.logic.accounts import allows
from dash_app.logic.views import agent_rows, column_defs
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/agents", title="HQ · agents", name="Agents"
)

POLL_MS = 5000
COLUMNS = [
    "name",
    "status",
    "not_free",
    "slots",
    "paused",
    "labels",
    "queues",
    "gpus",
    "warm",
    "last_heartbeat",
    "heartbeat_age_s",
    "drain_requested",
    "id",
]


def _rows() -> list[dict[str, Any]]:
    with hq_client() as client:
        agents = [a.model_dump(mode="json") for a in client.list_agents()]
    return agent_rows(agents, datetime.now(UTC))


def layout(**_query: Any) -> html.Div:
    is_admin = allows(current_role(), "admin")
    return html.Div(
        [
            html.H1("Agents"),
            dcc.Interval(id=ids.AGENTS_INTERVAL, interval=POLL_MS),
            html.Div(
                className="toolbar",
                children=[
                    html.Button(
                        "Drain selected",
                        id=ids.AGENTS_DRAIN,
                        className="btn danger small",
                        disabled=not is_admin,
                    ),
                    html.Span(
                        "Draining lets running jobs finish and claims nothing new."
                        if is_admin
                        else "Only admins can drain agents.",
                        className="muted",
                    ),
                ],
            ),
            html.Div(id=ids.AGENTS_MESSAGE),
            dag.AgGrid(
                id=ids.AGENTS_GRID,
                rowData=[],
                columnDefs=column_defs(COLUMNS),
                getRowId="params.data.id",
                defaultColDef={"resizable": True, "sortable": True, "filter": True},
                dashGridOptions={
                    "rowSelection": {"mode": "singleRow", "enableClickSelection": True}
                },
                style={"height": "60vh"},
            ),
        ]
    )


@callback(
    Output(ids.AGENTS_GRID, "rowData"),
    Output(ids.AGENTS_MESSAGE, "children"),
    Input(ids.AGENTS_INTERVAL, "n_intervals"),
)
def refresh(_ticks: int | None) -> tuple[Any, Any]:
    try:
        return _rows(), None
    except errors.HQError as exc:
        return no_update, error_message(exc)


@callback(
    Output(ids.AGENTS_MESSAGE, "children", allow_duplicate=True),
    Output(ids.AGENTS_GRID, "rowData", allow_duplicate=True),
    Input(ids.AGENTS_DRAIN, "n_clicks"),
    State(ids.AGENTS_GRID, "selectedRows"),
    prevent_initial_call=True,
)
def drain(clicks: int | None, selected: list[dict[str, Any]] | None) -> tuple[Any, Any]:
    if not clicks:  # the button appearing is not a click
        return no_update, no_update
    if not allows(current_role(), "admin"):
        return forbidden("drain agents"), no_update
    if not selected:
        return message("Select an agent first."), no_update
    try:
        with hq_client() as client:
            agent = client.drain_agent(selected[0]["id"])
        return message(f"Draining {agent.name}.", ok=True), _rows()
    except errors.HQError as exc:
        return error_message(exc), no_update
