"""Datasets: every dataset with its latest version, and an upload form for a new version."""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import current_role, hq_client
from dash_app.components.common import error_message, forbidden, message
from dash_app.grids import table_grid
from dash_app.logic.accounts import allows
from hq import errors
from hq.schemas.common import NAME_HELP, NAME_RE

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path="/datasets", title="HQ · datasets", name="Datasets"
)

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


def _rows() -> list[dict[str, Any]]:
    with hq_client() as client:
        return [
            {
                "name": d.name,
                "latest_version": d.latest_version,
                "versions": len(d.versions),
                "created_at": d.created_at.isoformat(),
            }
            for d in client.list_datasets()
        ]


def layout(**_query: Any) -> html.Div:
    try:
        rows = _rows()
    except errors.HQError as exc:
        return html.Div([html.H1("Datasets"), error_message(exc)])
    can_upload = allows(current_role(), "submitter")
    return html.Div(
        [
            html.H1("Datasets"),
            html.Div(
                className="card",
                children=[
                    html.H2("Upload a version"),
                    html.Div(
                        className="toolbar",
                        children=[
                            dcc.Input(
                                id=ids.DATASET_UPLOAD_NAME,
                                placeholder="dataset name",
                                className="input",
                                style={"width": "240px"},
                                disabled=not can_upload,
                            ),
                            dcc.Upload(
                                id=ids.DATASET_UPLOAD,
                                children=html.Button(
                                    "Choose a file…", className="btn", disabled=not can_upload
                                ),
                                max_size=MAX_UPLOAD_BYTES,
                                disabled=not can_upload,
                            ),
                        ],
                    ),
                    html.Div(id=ids.DATASET_MESSAGE),
                ],
            ),
            table_grid(ids.DATASETS_GRID, rows, height="55vh"),
        ]
    )


@callback(
    Output(ids.DATASET_MESSAGE, "children"),
    Output(ids.DATASETS_GRID, "rowData"),
    Input(ids.DATASET_UPLOAD, "contents"),
    State(ids.DATASET_UPLOAD, "filename"),
    State(ids.DATASET_UPLOAD_NAME, "value"),
    prevent_initial_call=True,
)
def upload(contents: str | None, filename: str | None, name: str | None) -> tuple[Any, Any]:
    """Send the chosen file to HQ as a new version of the named dataset."""
    if not allows(current_role(), "submitter"):
        return forbidden("upload datasets"), no_update
    if not contents or not filename:
        return no_update, no_update
    name = (name or "").strip()
    if not NAME_RE.fullmatch(name):
        return message(f"Give the dataset a name first: {NAME_HELP}."), no_update
    try:
        data = base64.b64decode(contents.split(",", 1)[1], validate=True)
    except (IndexError, binascii.Error):
        return message("The browser sent an unreadable file; try again."), no_update
    try:
        with hq_client() as client:
            version = client.upload_dataset_stream(
                name=name, stream=io.BytesIO(data), filename=filename
            )
        rows = _rows()
    except errors.HQError as exc:
        return error_message(exc), no_update
    return message(
        f"Stored {name} v{version.version} (sha256 {version.sha256[:16]}…).", ok=True
    ), rows


@callback(
    Output(ids.URL, "pathname", allow_duplicate=True),
    Input(ids.DATASETS_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_dataset(cell: dict[str, Any] | None) -> Any:
    if cell and cell.get("colId") == "name" and cell.get("value"):
        return f"/datasets/{cell['value']}"
    return no_update
