"""The jobs grid: AG Grid's infinite-row requests mapped onto HQ's cursor-paged job listing.

AG Grid asks for rows by offset (``startRow``/``endRow``); HQ pages by opaque cursor. The cursor
that starts each block is remembered (per sort and filter) so scrolling on costs one request per
block; a jump far ahead walks pages from the nearest known cursor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from dash_app.logic.views import short_time
from hq.schemas.common import JobStatus
from hq.schemas.jobs import JOB_SORT_KEYS

DEFAULT_SORT = "-created_at"
MAX_PAGE_ROWS = 500
FILTER_TEXT_COLUMNS = {"script": "script", "queue": "queue", "sweep_id": "sweep"}
DATE_COLUMN = "created_at"
STATUS_VALUES = tuple(str(s) for s in JobStatus)

Fetch = Callable[[int, str | None], tuple[list[dict[str, Any]], str | None]]


@dataclass(frozen=True)
class JobsQuery:
    """The ``list_jobs`` keyword arguments that one grid request stands for."""

    sort: str = DEFAULT_SORT
    filters: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Identifies the ordering: cursors are valid only for the query that produced them."""
        return json.dumps({"sort": self.sort, "filters": self.filters}, sort_keys=True)


def sort_from_model(sort_model: Sequence[dict[str, Any]] | None) -> str:
    """AG Grid's sortModel -> an HQ sort key; unsortable columns fall back to newest first."""
    for entry in sort_model or []:
        col, direction = entry.get("colId"), entry.get("sort")
        key = f"-{col}" if direction == "desc" else str(col)
        if key in JOB_SORT_KEYS:
            return key
    return DEFAULT_SORT


def _conditions(model: dict[str, Any]) -> list[dict[str, Any]]:
    if "conditions" in model:
        if model.get("operator", "OR") != "OR":
            raise ValueError("combine filter conditions with OR, not AND")
        return list(model["conditions"])
    return [model]


def _text_values(name: str, model: dict[str, Any]) -> list[str]:
    values: list[str] = []
    for cond in _conditions(model):
        if cond.get("type") not in ("equals", None):
            raise ValueError(f"the {name} filter supports 'equals' only")
        values += [v.strip() for v in str(cond.get("filter") or "").split(",") if v.strip()]
    return values


def _day(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value[:10]).replace(tzinfo=UTC)
    except ValueError as exc:
        raise ValueError(f"not a date: {value!r}") from exc


def date_range(model: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """A date filter -> (created_after, created_before), whole UTC days, both days inclusive."""
    kind, start = model.get("type"), model.get("dateFrom")
    if not start:
        return None, None
    day, one = _day(start), timedelta(days=1)
    if kind == "equals":
        return day, day + one
    if kind == "greaterThan":
        return day + one, None
    if kind == "lessThan":
        return None, day
    if kind == "inRange":
        end = model.get("dateTo")
        return day, (_day(end) + one) if end else None
    raise ValueError(f"the date filter does not support {kind!r}")


def query_from_request(request: dict[str, Any]) -> JobsQuery:
    """AG Grid's getRowsRequest -> a JobsQuery. Raises ValueError saying what to fix."""
    filters: dict[str, Any] = {}
    for col, model in (request.get("filterModel") or {}).items():
        if col == "status":
            statuses = _text_values("status", model)
            bad = [s for s in statuses if s not in STATUS_VALUES]
            if bad:
                raise ValueError(
                    f"unknown status {bad[0]!r}; use one of {', '.join(STATUS_VALUES)}"
                )
            if statuses:
                filters["status"] = sorted(set(statuses))
        elif col in FILTER_TEXT_COLUMNS:
            values = _text_values(col, model)
            if len(values) > 1:
                raise ValueError(f"filter {col} by one value at a time")
            if values:
                filters[FILTER_TEXT_COLUMNS[col]] = values[0]
        elif col == DATE_COLUMN:
            after, before = date_range(model)
            if after:
                filters["created_after"] = after.isoformat()
            if before:
                filters["created_before"] = before.isoformat()
        else:
            raise ValueError(f"column {col!r} cannot be filtered")
    return JobsQuery(sort=sort_from_model(request.get("sortModel")), filters=filters)


def request_identity(request: dict[str, Any]) -> dict[str, Any]:
    """The parts of a getRowsRequest that say which rows it wants (echoed with the answer)."""
    return {key: request.get(key) for key in ("startRow", "endRow", "sortModel", "filterModel")}


def cursor_start(cursors: dict[str, str], start_row: int) -> tuple[int, str | None]:
    """The nearest remembered block start at or before ``start_row``, with its cursor."""
    best, cursor = 0, None
    for key, value in cursors.items():
        start = int(key)
        if best < start <= start_row and value:
            best, cursor = start, value
    return best, cursor


@dataclass
class Block:
    rows: list[dict[str, Any]]
    last_row: int | None
    cursors: dict[str, str]


def fetch_block(
    fetch: Fetch,
    *,
    cursors: dict[str, str],
    start_row: int,
    end_row: int,
    max_page: int = MAX_PAGE_ROWS,
) -> Block:
    """Rows [start_row, end_row) through ``fetch(limit, cursor) -> (rows, next_cursor)``.

    ``last_row`` is the total row count once the end is seen, else None (AG Grid keeps asking).
    """
    known = dict(cursors)
    start, cursor = cursor_start(known, start_row)
    while start < start_row:
        rows, nxt = fetch(min(start_row - start, max_page), cursor)
        start += len(rows)
        if nxt is None or not rows:
            return Block(rows=[], last_row=start, cursors=known)
        cursor = known[str(start)] = nxt
    rows, nxt = fetch(min(end_row - start_row, max_page), cursor)
    if nxt is not None and rows:
        known[str(start_row + len(rows))] = nxt
        return Block(rows=rows, last_row=None, cursors=known)
    return Block(rows=rows, last_row=start_row + len(rows), cursors=known)


def _short(value: str | None) -> str:
    return value[:8] if value else ""


def _compact(values: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(values.items())
    )


def _seconds(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds(), 1)


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    """A job (JobRead as JSON) -> one flat grid row."""
    return {
        "id": job["id"],
        "short_id": _short(job["id"]),
        "script": job["script"],
        "version": job.get("script_version"),
        "status": job["status"],
        "queue": job.get("queue"),
        "priority": job.get("priority"),
        "attempts": f"{job.get('attempts', 0)}/{job.get('max_attempts', 0)}",
        "sweep_id": job.get("sweep_id") or "",
        "agent": _short(job.get("agent_id")),
        "created_at": short_time(job.get("created_at")),
        "started_at": short_time(job.get("started_at")),
        "finished_at": short_time(job.get("finished_at")),
        "duration_s": _seconds(job.get("started_at"), job.get("finished_at")),
        "params": _compact(job.get("params") or {}),
        "metrics": _compact(job.get("metrics") or {}),
    }


def job_href(cell: dict[str, Any] | None, columns: Sequence[str]) -> str | None:
    """The page a click on a jobs-grid cell opens, or None (e.g. a click on a selection box)."""
    if not cell or cell.get("colId") not in columns:
        return None
    row_id = cell.get("rowId")
    return f"/jobs/{row_id}" if row_id else None


def compare_href(selected: Sequence[dict[str, Any]] | None) -> str | None:
    """The compare page for the selected jobs (and their scripts), or None below two jobs."""
    rows = [row for row in selected or [] if row and row.get("id")]
    if len(rows) < 2:
        return None
    scripts = sorted({str(row["script"]) for row in rows if row.get("script")})
    query = f"/compare?jobs={','.join(row['id'] for row in rows)}"
    return f"{query}&scripts={','.join(scripts)}" if scripts else query
