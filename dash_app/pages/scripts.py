"""Scripts: every published script, its latest version and description."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, callback, html, no_update

from dash_app import ids
from dash_app.auth import hq_client
from dash_app.components.common import error_message
from dash_app.grids import table_grid
from hq import errors

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/scripts", title="HQ · scripts", name="Scripts"
)


def layout(**_query: Any) -> html.Div:
    try:
        with hq_client() as client:
            scripts = client.list_scripts()
    except errors.HQError as exc:
        return html.Div([html.H1("Scripts"), error_message(exc)])
    rows = [
        {
            "name": s.name,
            "description": s.description,
            "latest version": s.latest_version,
            "created (UTC)": s.created_at.strftime("%Y-%m-%d %H:%M"),
        }
        for s in scripts
    ]
    return html.Div(
        [
            html.H1("Scripts"),
            html.P("Click a script for its versions, manifest and submit form.", className="muted"),
            table_grid(ids.SCRIPTS_GRID, rows, height="60vh"),
        ]
    )


@callback(
    Output(ids.URL, "pathname", allow_duplicate=True),
    Input(ids.SCRIPTS_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_script(cell: dict[str, Any] | None) -> Any:
    if not cell or cell.get("rowIndex") is None:
        return no_update
    return f"/scripts/{cell['value']}" if cell.get("colId") == "name" else no_update
