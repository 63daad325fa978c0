"""Metrics from a job's own output: the manifest's ``metrics_from_logs`` applied to each line.

Every stdout and stderr line is searched with each pattern (RE2, so linear in the line whatever
the pattern; the agent's own notes are not searched). A named group that captured a number sets
that metric (the latest matching line wins); ``keep: all`` also records each match as a row of a
series (at most ``MAX_SERIES_POINTS`` rows: a longer series is thinned evenly, every other row
dropped whenever it doubles, so its shape survives). Text that is not a finite number is ignored.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass, field
from typing import Any

from hq.schemas.common import Metric
from hq.schemas.logmetrics import LogMetric, compile_pattern
from hq.schemas.results import MAX_INT_METRIC

MAX_SERIES_POINTS = 10_000
STEP_COLUMN = "step"
SEARCHED_STREAMS = frozenset({"stdout", "stderr"})
INT_RE = re.compile(r"^[+-]?[0-9]+$")


def parse_number(text: str | None) -> Metric | None:
    """A captured number: an integer stays one (within ±2**53), else a finite float; None for
    anything else (text, NaN, infinity)."""
    if text is None:
        return None
    text = text.strip()
    if INT_RE.match(text):
        number = int(text)
        if abs(number) <= MAX_INT_METRIC:
            return number
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


@dataclass
class Series:
    """The rows of one ``keep: all`` pattern, thinned evenly past ``MAX_SERIES_POINTS``."""

    rows: list[dict[str, Metric]] = field(default_factory=list)
    stride: int = 1
    seen: int = 0

    def add(self, row: dict[str, Metric]) -> None:
        self.seen += 1
        if (self.seen - 1) % self.stride:
            return
        self.rows.append(row)
        if len(self.rows) > MAX_SERIES_POINTS:
            self.rows = self.rows[::2]
            self.stride *= 2


@dataclass
class _Pattern:
    spec: LogMetric
    regex: Any
    groups: list[str]
    series: Series | None


class LogMetrics:
    """Fed line by line while the job runs (from the log reader thread); read once it ended."""

    def __init__(self, specs: list[LogMetric]) -> None:
        self._patterns = [
            _Pattern(
                spec=s,
                regex=compile_pattern(s.pattern),
                groups=s.groups,
                series=Series() if s.keep == "all" else None,
            )
            for s in specs
        ]
        self._last: dict[str, Metric] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._patterns)

    def feed(self, stream: str, text: str) -> None:
        """One whole line of output on ``stream``."""
        if stream not in SEARCHED_STREAMS:
            return
        for pattern in self._patterns:
            match = pattern.regex.search(text)
            if match is None:
                continue
            captured = match.groupdict()
            numbers = {g: parse_number(captured.get(g)) for g in pattern.groups}
            found = {g: v for g, v in numbers.items() if v is not None}
            values = {g: v for g, v in found.items() if g != pattern.spec.x}
            if not values:
                continue
            with self._lock:
                self._last.update(values)
                if pattern.series is not None:
                    self._add_row(pattern, found, values)

    @staticmethod
    def _add_row(pattern: _Pattern, found: dict[str, Metric], values: dict[str, Metric]) -> None:
        assert pattern.series is not None
        x = pattern.spec.x
        if x is None:
            pattern.series.add({STEP_COLUMN: pattern.series.seen + 1, **values})
        elif x in found:
            pattern.series.add({x: found[x], **values})

    def metrics(self) -> dict[str, Metric]:
        with self._lock:
            return dict(self._last)

    def tables(self) -> dict[str, list[dict[str, Any]]]:
        """The series of ``keep: all`` patterns that matched, by table name."""
        with self._lock:
            return {
                p.spec.table: [dict(r) for r in p.series.rows]
                for p in self._patterns
                if p.series is not None and p.series.rows
            }

    def charts(self, tables: set[str]) -> list[dict[str, Any]]:
        """A line chart per value group of each series whose table is in ``tables``."""
        charts: list[dict[str, Any]] = []
        for p in self._patterns:
            if p.series is None or p.spec.table not in tables:
                continue
            for group in p.spec.values:
                charts.append(
                    {
                        "kind": "line",
                        "table": p.spec.table,
                        "x": p.spec.x or STEP_COLUMN,
                        "y": group,
                        "title": f"{group} (from the logs)",
                    }
                )
        return charts
