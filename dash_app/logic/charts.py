"""Charts of a job's result: Plotly figures drawn as given, declarative specs drawn here."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import plotly.graph_objects as go

from hq.schemas.results import ChartSpec

MAX_POINTS = 100_000


def error_figure(message: str) -> go.Figure:
    """An empty figure that says why nothing is drawn."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def chart_title(chart: dict[str, Any], index: int) -> str:
    if "data" in chart:
        title = (chart.get("layout") or {}).get("title")
        text = title.get("text") if isinstance(title, dict) else title
        return str(text) if text else f"chart {index + 1}"
    spec = chart.get("title") or f"{chart.get('kind')} of {chart.get('table')}"
    return str(spec)


def _column(rows: list[dict[str, Any]], name: str | None) -> list[Any] | None:
    return None if name is None else [row.get(name) for row in rows]


def _check_columns(spec: ChartSpec, rows: list[dict[str, Any]]) -> None:
    present = set().union(*(row.keys() for row in rows)) if rows else set()
    for axis in ("x", "y", "color"):
        name = getattr(spec, axis)
        if name is not None and rows and name not in present:
            raise ValueError(f"table {spec.table!r} has no column {name!r} (for {axis})")


def _traces(spec: ChartSpec, rows: list[dict[str, Any]]) -> list[go.BaseTraceType]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows[:MAX_POINTS]:
        groups["" if spec.color is None else str(row.get(spec.color))].append(row)
    traces: list[go.BaseTraceType] = []
    for name, part in groups.items():
        x, y = _column(part, spec.x), _column(part, spec.y)
        label = name or None
        if spec.kind == "scatter":
            traces.append(go.Scatter(x=x, y=y, mode="markers", name=label))
        elif spec.kind == "line":
            traces.append(go.Scatter(x=x, y=y, mode="lines", name=label))
        elif spec.kind == "bar":
            traces.append(go.Bar(x=x, y=y, name=label))
        elif spec.kind == "histogram":
            traces.append(go.Histogram(x=x, y=y if x is None else None, name=label))
        else:
            traces.append(go.Box(x=x, y=y, name=label))
    return traces


def figure_from_spec(spec: ChartSpec, tables: dict[str, list[dict[str, Any]]]) -> go.Figure:
    """Draw a declarative chart from the named table. Raises ValueError on a bad reference."""
    if spec.table not in tables:
        raise ValueError(f"chart names table {spec.table!r}, which the result does not have")
    rows = tables[spec.table]
    if spec.kind != "histogram" and spec.y is None and spec.kind != "box":
        raise ValueError(f"a {spec.kind} chart needs 'y'")
    if spec.x is None and spec.y is None:
        raise ValueError("a chart needs 'x' or 'y'")
    _check_columns(spec, rows)
    fig = go.Figure(data=_traces(spec, rows))
    fig.update_layout(
        title=spec.title or f"{spec.kind}: {spec.table}",
        xaxis_title=spec.x,
        yaxis_title=spec.y,
        showlegend=spec.color is not None,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
    )
    return fig


def figure_from_chart(
    chart: dict[str, Any], tables: dict[str, list[dict[str, Any]]], index: int = 0
) -> go.Figure:
    """Any chart of a result -> a figure; a chart that cannot be drawn becomes an error figure."""
    try:
        if "data" in chart:
            fig = go.Figure(chart)
            if not fig.layout.title.text:
                fig.update_layout(title=chart_title(chart, index))
            return fig
        return figure_from_spec(ChartSpec.model_validate(chart), tables)
    except ValueError as exc:
        return error_figure(f"cannot draw this chart: {str(exc).splitlines()[0]}")
