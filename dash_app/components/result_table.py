"""ResultTableAIO: one titled AG Grid for a table of rows, with its own CSV export button."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import MATCH, Input, Output, callback, html

from dash_app import ids
from dash_app.grids import table_grid


class ResultTableAIO(html.Div):
    """A titled grid; ``aio_id`` must be unique on the page (e.g. the table's name)."""

    class ids:
        @staticmethod
        def grid(aio_id: Any) -> dict[str, Any]:
            return ids.result_table("grid", aio_id)

        @staticmethod
        def export(aio_id: Any) -> dict[str, Any]:
            return ids.result_table("export", aio_id)

    def __init__(
        self,
        *,
        aio_id: str,
        title: str,
        rows: Sequence[dict[str, Any]],
        columns: Sequence[str] | None = None,
        height: str = "320px",
        count: bool = True,
    ) -> None:
        super().__init__(
            className="card result-table",
            children=[
                html.Div(
                    className="card-head",
                    children=[
                        html.H3(title),
                        html.Span(f"{len(rows)} rows" if count else "", className="muted"),
                        html.Button(
                            "Export CSV", id=self.ids.export(aio_id), className="btn small"
                        ),
                    ],
                ),
                table_grid(
                    self.ids.grid(aio_id),
                    rows,
                    columns=columns,
                    height=height,
                    csv_name=f"{aio_id}.csv",
                ),
            ],
        )


@callback(
    Output(ids.result_table("grid", MATCH), "exportDataAsCsv"),
    Input(ids.result_table("export", MATCH), "n_clicks"),
    prevent_initial_call=True,
)
def export_csv(n_clicks: int | None) -> bool:
    return bool(n_clicks)
