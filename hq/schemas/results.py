"""``/hq/outputs/results.json``: a job's queryable result (metrics, tables, charts)."""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import Field, field_validator

from hq.schemas.common import Metric, Model

MAX_RESULTS_BYTES = 16 * 1024 * 1024
MAX_TABLE_ROWS = 100_000
MAX_METRICS = 1_000
MAX_INT_METRIC = 2**53  # the largest integer every JSON reader (JavaScript too) keeps exact
CHART_KINDS = ("scatter", "line", "bar", "histogram", "box")


def metric_text(value: Metric) -> str:
    """A metric as the CLI and the web app show it: an integer whole (1234567), a float to
    6 significant digits."""
    return str(value) if isinstance(value, int) else f"{value:g}"


class ChartSpec(Model):
    """A small declarative chart that the Dash app draws from one of the job's tables."""

    kind: Literal["scatter", "line", "bar", "histogram", "box"]
    table: str
    x: str | None = None
    y: str | None = None
    color: str | None = None
    title: str | None = None


class Results(Model):
    metrics: dict[str, Metric] = Field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    charts: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("metrics", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for name, number in value.items():
                if isinstance(number, bool):
                    raise ValueError(f"metric {name!r} must be a number, not a boolean")
        return value

    @field_validator("metrics")
    @classmethod
    def _metrics(cls, value: dict[str, Metric]) -> dict[str, Metric]:
        if len(value) > MAX_METRICS:
            raise ValueError(f"at most {MAX_METRICS} metrics")
        for name, number in value.items():
            if isinstance(number, int):
                if abs(number) > MAX_INT_METRIC:
                    raise ValueError(
                        f"integer metric {name!r} is beyond ±2**53, where JSON readers lose "
                        "digits; write it as a float"
                    )
            elif not math.isfinite(number):
                raise ValueError(f"metric {name!r} must be a finite number, not {number}")
        return value

    @field_validator("tables")
    @classmethod
    def _tables(cls, value: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
        for name, rows in value.items():
            if len(rows) > MAX_TABLE_ROWS:
                raise ValueError(f"table {name!r} has {len(rows)} rows; at most {MAX_TABLE_ROWS}")
        return value

    @field_validator("charts")
    @classmethod
    def _charts(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for i, chart in enumerate(value):
            if "data" in chart:  # a Plotly figure as JSON
                if not isinstance(chart["data"], list):
                    raise ValueError(f"charts[{i}]: a Plotly figure's 'data' must be a list")
                continue
            try:
                ChartSpec.model_validate(chart)
            except ValueError as exc:
                raise ValueError(
                    f"charts[{i}] is neither a Plotly figure (with 'data') nor a spec "
                    f"{{kind: {'|'.join(CHART_KINDS)}, table, x, y}}: {exc}"
                ) from exc
        return value

    def check_tables_referenced(self) -> None:
        """Declarative charts must name a table the results contain."""
        for i, chart in enumerate(self.charts):
            if "data" not in chart and chart.get("table") not in self.tables:
                raise ValueError(f"charts[{i}] names table {chart.get('table')!r}, which is absent")
