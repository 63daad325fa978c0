"""The compare page: one table of params and metrics, and the charts drawn from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import plotly.graph_objects as go

from dash_app.logic.charts import error_figure
from dash_app.logic.fit import numeric

REPEAT_COLUMNS = frozenset({"repeat", "_repeat", "hq_repeat"})


@dataclass
class CompareTable:
    """Params and metrics of several jobs; ``param_columns`` and ``metric_columns`` split them."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    param_columns: list[str] = field(default_factory=list)
    metric_columns: list[str] = field(default_factory=list)
    other_columns: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return self.other_columns + self.param_columns + self.metric_columns


def _union(into: list[str], more: Sequence[str]) -> None:
    into.extend(c for c in more if c not in into)


def merge_tables(tables: Sequence[dict[str, Any]]) -> CompareTable:
    """Merge ResultsTable JSONs (e.g. one per script) into one table, keeping column order."""
    merged = CompareTable()
    for table in tables:
        _union(merged.param_columns, table.get("param_columns", []))
        _union(merged.metric_columns, table.get("metric_columns", []))
        known = set(table.get("param_columns", [])) | set(table.get("metric_columns", []))
        _union(merged.other_columns, [c for c in table.get("columns", []) if c not in known])
        merged.rows.extend(table.get("rows", []))
    return merged


def setting_params(table: CompareTable) -> list[str]:
    """Params that define a setting: every param except a repeat counter."""
    return [p for p in table.param_columns if p not in REPEAT_COLUMNS]


def varying_params(rows: Sequence[dict[str, Any]], params: Sequence[str]) -> list[str]:
    """The params whose value differs between rows (constant ones say nothing in a chart);
    all of them when none varies."""
    varying = [p for p in params if len({repr(r.get(p)) for r in rows}) > 1]
    return varying or list(params)


def setting_label(row: dict[str, Any], params: Sequence[str]) -> str:
    return ", ".join(f"{p}={row.get(p)}" for p in params) or "all jobs"


def group_by_setting(
    rows: Sequence[dict[str, Any]], params: Sequence[str], metric: str
) -> dict[str, list[float]]:
    """Metric values per setting (repeats of the same params), in first-seen order."""
    groups: dict[str, list[float]] = {}
    for row in rows:
        value = numeric(row.get(metric))
        if value is not None:
            groups.setdefault(setting_label(row, params), []).append(value)
    return groups


def box_figure(groups: dict[str, list[float]], metric: str) -> go.Figure:
    """One box per setting: the spread of a metric over repeats (variance)."""
    if not groups:
        return error_figure(f"no numeric values of {metric!r}")
    fig = go.Figure(
        [
            go.Box(y=values, name=label, boxpoints="all", jitter=0.3)
            for label, values in groups.items()
        ]
    )
    fig.update_layout(
        title=f"{metric} over repeats, per setting",
        yaxis_title=metric,
        showlegend=False,
        margin={"l": 50, "r": 20, "t": 50, "b": 80},
    )
    return fig


def _dimension(label: str, values: list[Any]) -> dict[str, Any]:
    numbers = [numeric(v) for v in values]
    if all(n is not None for n in numbers):
        return {"label": label, "values": numbers}
    categories = sorted({str(v) for v in values})
    index = {c: i for i, c in enumerate(categories)}
    return {
        "label": label,
        "values": [index[str(v)] for v in values],
        "tickvals": list(range(len(categories))),
        "ticktext": categories,
    }


def parallel_figure(
    rows: Sequence[dict[str, Any]], params: Sequence[str], metric: str
) -> go.Figure:
    """Parallel coordinates over the params and one metric, coloured by the metric."""
    usable = [r for r in rows if numeric(r.get(metric)) is not None]
    if not usable:
        return error_figure(f"no numeric values of {metric!r}")
    metric_values = [numeric(r.get(metric)) for r in usable]
    dims = [_dimension(p, [r.get(p) for r in usable]) for p in params]
    dims.append({"label": metric, "values": metric_values})
    fig = go.Figure(
        go.Parcoords(
            line={"color": metric_values, "colorscale": "Viridis", "showscale": True},
            dimensions=dims,
        )
    )
    fig.update_layout(title=f"params and {metric}", margin={"l": 60, "r": 60, "t": 70, "b": 30})
    return fig


def numeric_params(table: CompareTable) -> list[str]:
    """Params with at least one numeric value: the x choices of the scatter."""
    return [
        p for p in setting_params(table) if any(numeric(r.get(p)) is not None for r in table.rows)
    ]


def parse_job_ids(text: str | None) -> list[str]:
    """``?jobs=a,b,c`` -> ids, in order, without blanks or repeats."""
    ids: list[str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part and part not in ids:
            ids.append(part)
    return ids
