"""Webhooks: where HQ posts job, sweep and pipeline ends, and the recent deliveries of the one
selected (the first, until one is picked): status, tries with their status codes, the last
error and when the next try is due. Secrets are never shown: HQ shows one once, at creation."""

from __future__ import annotations

from typing import Any

import dash
import dash_ag_grid as dag
from dash import Input, Output, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import hq_client
from dash_app.components.common import error_message
from dash_app.logic.views import column_defs, delivery_rows, webhook_rows
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/webhooks", title="HQ · webhooks", name="Webhooks"
)

POLL_MS = 5000
RECENT = 50
WEBHOOK_COLUMNS = ["url", "events", "failures_only", "script", "description", "created_at", "id"]
DELIVERY_COLUMNS = [
    "created_at",
    "event",
    "subject",
    "status",
    "attempts",
    "tries",
    "last_status_code",
    "last_error",
    "next_attempt_at",
    "id",
]


def _grid(grid_id: str, columns: list[str], height: str) -> dag.AgGrid:
    return dag.AgGrid(
        id=grid_id,
        rowData=[],
        columnDefs=column_defs(columns),
        getRowId="params.data.id",
        defaultColDef={"resizable": True, "sortable": True, "filter": True},
        dashGridOptions={"rowSelection": {"mode": "singleRow", "enableClickSelection": True}},
        style={"height": height},
    )


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.H1("Webhooks"),
            dcc.Interval(id=ids.WEBHOOKS_INTERVAL, interval=POLL_MS),
            html.P(
                "Create and delete webhooks with `hq webhook`; pick one to see its deliveries.",
                className="muted",
            ),
            html.Div(id=ids.WEBHOOKS_MESSAGE),
            _grid(ids.WEBHOOKS_GRID, WEBHOOK_COLUMNS, "30vh"),
            html.H2("Recent deliveries", id=ids.WEBHOOK_DELIVERIES_TITLE),
            _grid(ids.WEBHOOK_DELIVERIES_GRID, DELIVERY_COLUMNS, "40vh"),
        ]
    )


@callback(
    Output(ids.WEBHOOKS_GRID, "rowData"),
    Output(ids.WEBHOOK_DELIVERIES_GRID, "rowData"),
    Output(ids.WEBHOOK_DELIVERIES_TITLE, "children"),
    Output(ids.WEBHOOKS_MESSAGE, "children"),
    Input(ids.WEBHOOKS_INTERVAL, "n_intervals"),
    Input(ids.WEBHOOKS_GRID, "selectedRows"),
)
def refresh(_ticks: int | None, selected: list[dict[str, Any]] | None) -> tuple[Any, ...]:
    try:
        with hq_client() as client:
            webhooks = [w.model_dump(mode="json") for w in client.list_webhooks()]
            shown = selected[0]["id"] if selected else (webhooks[0]["id"] if webhooks else None)
            page = client.list_deliveries(shown, limit=RECENT) if shown else None
    except errors.HQError as exc:
        return no_update, no_update, no_update, error_message(exc)
    if page is None:
        return webhook_rows(webhooks), [], "Recent deliveries", None
    url = next((w["url"] for w in webhooks if w["id"] == shown), shown)
    rows = delivery_rows([d.model_dump(mode="json") for d in page.items])
    return webhook_rows(webhooks), rows, f"Recent deliveries to {url}", None
