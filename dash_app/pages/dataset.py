"""One dataset: versions with sha256, a preview of a version's first rows, and its lineage."""

from __future__ import annotations

from typing import Any

import dash
from dash import Input, Output, State, callback, dcc, html, no_update

from dash_app import ids
from dash_app.auth import hq_client
from dash_app.components.common import error_message, kv
from dash_app.grids import table_grid
from dash_app.logic.views import human_size, lineage_rows, version_rows
from hq import errors
from hq.schemas.common import is_number

dash.register_page(  # type: ignore[no-untyped-call]
    __name__, path_template="/datasets/<name>", title="HQ · dataset", name="Dataset"
)


def _versions_card(dataset: Any, chosen: Any) -> html.Div:
    """The version picker and every version with its sha256."""
    return html.Div(
        className="card",
        children=[
            html.H2("Versions"),
            dcc.Dropdown(
                id=ids.DATASET_VERSION,
                value=chosen.version,
                clearable=False,
                options=[{"label": f"v{v.version}", "value": v.version} for v in dataset.versions],
            ),
            table_grid(
                ids.DATASET_VERSIONS_GRID,
                version_rows(dataset.model_dump(mode="json")),
                height="220px",
            ),
        ],
    )


def _detail(dataset: Any, chosen: Any) -> html.Dl:
    """The chosen version's file, size, sha256, shape and download link."""
    download = html.A(
        "download",
        href=f"/download/datasets/{dataset.name}/{chosen.version}",
        target="_blank",
    )
    return kv(
        [
            ("file", chosen.filename),
            ("size", human_size(chosen.size)),
            ("sha256", chosen.sha256),
            ("rows", str(chosen.rows or "—")),
            ("columns", ", ".join(chosen.columns or []) or "—"),
            ("created", chosen.created_at.isoformat()),
            ("download", download),
        ]
    )


def _detail_card(dataset: Any, chosen: Any, lineage: Any) -> html.Div:
    return html.Div(
        className="card",
        id=ids.DATASET_DETAIL,
        children=[
            html.H2(f"Version {chosen.version}"),
            _detail(dataset, chosen),
            html.H2("Lineage"),
            table_grid(
                ids.DATASET_LINEAGE_GRID,
                lineage_rows(lineage.model_dump(mode="json")),
                height="160px",
            ),
        ],
    )


def _preview_card(chosen: Any) -> html.Div:
    """The first rows of the chosen version, when its file type has a preview."""
    preview = chosen.preview or []
    return html.Div(
        className="card",
        children=[
            html.H2(f"Preview (first {len(preview)} rows)"),
            table_grid(
                ids.DATASET_PREVIEW_GRID,
                preview,
                columns=chosen.columns or None,
                height="320px",
            )
            if preview
            else html.Div("No preview for this file type.", className="muted"),
        ],
    )


def layout(name: str | None = None, version: str | None = None, **_query: Any) -> html.Div:
    try:
        with hq_client() as client:
            dataset = client.get_dataset(str(name))
            if not dataset.versions:
                return html.Div([html.H1(f"Dataset {name}"), html.P("No versions yet.")])
            number = int(version) if version and is_number(version) else dataset.latest_version
            chosen = client.get_dataset_version(dataset.name, int(number or 1))
            lineage = client.dataset_lineage(dataset.name, chosen.version)
    except errors.HQError as exc:
        return html.Div([html.H1(f"Dataset {name}"), error_message(exc)])
    return html.Div(
        [
            html.H1(f"Dataset {dataset.name}"),
            dcc.Store(id=ids.DATASET_SHOWN, data=chosen.version),
            html.Div(
                className="row",
                children=[
                    _versions_card(dataset, chosen),
                    _detail_card(dataset, chosen, lineage),
                ],
            ),
            _preview_card(chosen),
        ]
    )


@callback(
    Output(ids.URL, "search", allow_duplicate=True),
    Input(ids.DATASET_VERSION, "value"),
    State(ids.DATASET_SHOWN, "data"),
    prevent_initial_call=True,
)
def pick_version(version: int | None, shown: int | None) -> Any:
    """Open another version (the dropdown appearing with the shown one is not a pick)."""
    return f"?version={version}" if version and version != shown else no_update


@callback(
    Output(ids.URL, "pathname", allow_duplicate=True),
    Input(ids.DATASET_LINEAGE_GRID, "cellClicked"),
    prevent_initial_call=True,
)
def open_job(cell: dict[str, Any] | None) -> Any:
    if cell and cell.get("colId") == "job" and cell.get("value"):
        return f"/jobs/{cell['value']}"
    return no_update
