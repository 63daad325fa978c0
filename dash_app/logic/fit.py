"""Least-squares line and R² for the compare page's metric-vs-param scatter (linearity)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go

from dash_app.logic.charts import error_figure


@dataclass(frozen=True)
class LinearFit:
    slope: float
    intercept: float
    r2: float | None  # None when y does not vary (R² is undefined)
    n: int


def numeric(value: Any) -> float | None:
    """A finite float, or None for anything else (text, None, bool, NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def paired(rows: Sequence[dict[str, Any]], x: str, y: str) -> tuple[list[float], list[float]]:
    """The (x, y) pairs where both are numbers."""
    xs: list[float] = []
    ys: list[float] = []
    for row in rows:
        a, b = numeric(row.get(x)), numeric(row.get(y))
        if a is not None and b is not None:
            xs.append(a)
            ys.append(b)
    return xs, ys


def linear_fit(xs: Sequence[float], ys: Sequence[float]) -> LinearFit | None:
    """Ordinary least squares y = slope * x + intercept; None with < 2 points or constant x."""
    n = len(xs)
    if n < 2 or n != len(ys):
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in zip(xs, ys, strict=True))
    r2 = None if ss_tot == 0 else 1.0 - ss_res / ss_tot
    return LinearFit(slope=slope, intercept=intercept, r2=r2, n=n)


def fit_label(fit: LinearFit | None) -> str:
    if fit is None:
        return "no fit (needs two or more distinct numeric x values)"
    r2 = "undefined (y is constant)" if fit.r2 is None else f"{fit.r2:.4f}"
    return f"y = {fit.slope:.4g}·x + {fit.intercept:.4g}, R² = {r2}, n = {fit.n}"


def scatter_with_fit(rows: Sequence[dict[str, Any]], x: str, y: str) -> go.Figure:
    """Metric (y) against param (x), with the least-squares line and R² in the title."""
    xs, ys = paired(rows, x, y)
    if not xs:
        return error_figure(f"no numeric values of {x!r} and {y!r} to plot")
    fit = linear_fit(xs, ys)
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers", name="jobs"))
    if fit is not None:
        lo, hi = min(xs), max(xs)
        fig.add_trace(
            go.Scatter(
                x=[lo, hi],
                y=[fit.slope * lo + fit.intercept, fit.slope * hi + fit.intercept],
                mode="lines",
                name="least squares",
            )
        )
    fig.update_layout(
        title=f"{y} vs {x}: {fit_label(fit)}",
        xaxis_title=x,
        yaxis_title=y,
        margin={"l": 50, "r": 20, "t": 50, "b": 40},
    )
    return fig
