"""The flat results table: one row per job, its params and metrics side by side.

JSON comes in pages (oldest first, keyset cursors over ``(created_at, id)``). CSV has no cap:
``csv_download`` streams it in batches, each read in a transaction of its own, in two passes
(the column names, then the rows), both bounded by the newest row when the download began.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.common import JobStatus
from hq.schemas.sweeps import ResultsTable
from hq.server import paging
from hq.server.db.models import Job

MAX_PAGE_ROWS = 100_000
DEFAULT_PAGE_ROWS = 10_000
CSV_BATCH_ROWS = 5_000
FIXED_COLUMNS = ("job_id", "status", "script_version", "sweep_id", "repeat", "finished_at")
CURSOR_SORT = "created_at"

Key = tuple[datetime, str]  # (created_at, id): the order of the table and its cursors


@dataclass(frozen=True)
class ResultsQuery:
    """Which jobs' rows: at least one of script, sweep or job ids; statuses narrow further."""

    script: str | None = None
    sweep_id: str | None = None
    job_ids: Sequence[str] | None = None
    statuses: Sequence[str] | None = None

    def check(self) -> ResultsQuery:
        if not (self.script or self.sweep_id or self.job_ids):
            raise errors.ValidationFailed("name a script, a sweep or jobs", field="script")
        for status in self.statuses or []:
            if status not in JobStatus.__members__:
                names = ", ".join(JobStatus.__members__)
                raise errors.ValidationFailed(
                    f"unknown status {status!r}: use one of {names}", field="status"
                )
        return self


def _select(query: ResultsQuery, *, after: Key | None, upto: Key | None, limit: int) -> Select[Any]:
    stmt = select(
        Job.created_at,
        Job.id,
        Job.status,
        Job.script_version,
        Job.sweep_id,
        Job.repeat,
        Job.finished_at,
        Job.params,
        Job.metrics,
    )
    if query.script:
        stmt = stmt.where(Job.script_name == query.script)
    if query.sweep_id:
        stmt = stmt.where(Job.sweep_id == query.sweep_id)
    if query.job_ids:
        stmt = stmt.where(Job.id.in_(query.job_ids))
    if query.statuses:
        stmt = stmt.where(Job.status.in_(query.statuses))
    if after is not None:
        stmt = stmt.where(
            paging.after(Job.created_at, Job.id, value=after[0], last_id=after[1], descending=False)
        )
    if upto is not None:
        newer = paging.after(
            Job.created_at, Job.id, value=upto[0], last_id=upto[1], descending=False
        )
        stmt = stmt.where(~newer)
    return stmt.order_by(Job.created_at, Job.id).limit(limit)


async def fetch_rows(
    session: AsyncSession,
    *,
    query: ResultsQuery,
    after: Key | None = None,
    upto: Key | None = None,
    limit: int,
) -> Sequence[Row[Any]]:
    """Up to ``limit`` raw rows after ``after`` and not after ``upto``, oldest first."""
    rows: Sequence[Row[Any]] = (
        await session.execute(_select(query, after=after, upto=upto, limit=limit))
    ).all()
    return rows


def key_of(row: Row[Any]) -> Key:
    return (row.created_at, row.id)


async def newest_key(session: AsyncSession, *, query: ResultsQuery) -> Key | None:
    """Where a download that starts now ends: rows added later are not part of it."""
    stmt = _select(query, after=None, upto=None, limit=1).order_by(None)  # the newest instead
    stmt = stmt.order_by(Job.created_at.desc(), Job.id.desc())
    row: Row[Any] | None = (await session.execute(stmt)).first()
    return key_of(row) if row is not None else None


async def results_page(
    session: AsyncSession, *, query: ResultsQuery, limit: int, cursor: str | None = None
) -> ResultsTable:
    """One page of the table, and the cursor of the next when there is more."""
    after = None
    if cursor:
        value, last_id = paging.decode_cursor(cursor, sort=CURSOR_SORT, value_types=(datetime,))
        after = (value, last_id)
    rows = await fetch_rows(session, query=query.check(), after=after, limit=limit + 1)
    page, next_cursor = paging.cut_page(rows, limit, sort=CURSOR_SORT, key=key_of)
    table = build_table(page)
    table.next_cursor = next_cursor
    return table


class Columns:
    """The param and metric column names seen so far; a metric named like a param becomes
    ``metric.<name>``."""

    def __init__(self) -> None:
        self.params: dict[str, None] = {}
        self.metrics: dict[str, None] = {}

    def add(self, rows: Sequence[Row[Any]]) -> None:
        for row in rows:
            self.params.update(dict.fromkeys(row.params or {}))
            self.metrics.update(dict.fromkeys(row.metrics or {}))

    @property
    def param_columns(self) -> list[str]:
        return sorted(self.params)

    @property
    def metric_columns(self) -> list[str]:
        return sorted(self.metric_name(n) for n in self.metrics)

    @property
    def all(self) -> list[str]:
        return [*FIXED_COLUMNS, *self.param_columns, *self.metric_columns]

    def metric_name(self, name: str) -> str:
        return name if name not in self.params else f"metric.{name}"

    def row(self, raw: Row[Any]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "job_id": raw.id,
            "status": raw.status,
            "script_version": raw.script_version,
            "sweep_id": raw.sweep_id,
            "repeat": raw.repeat,
            "finished_at": raw.finished_at,
        }
        out.update(raw.params or {})
        for name, value in (raw.metrics or {}).items():
            out[self.metric_name(name)] = value
        return out


def build_table(rows: Sequence[Row[Any]]) -> ResultsTable:
    columns = Columns()
    columns.add(rows)
    return ResultsTable(
        columns=columns.all,
        param_columns=columns.param_columns,
        metric_columns=columns.metric_columns,
        rows=[columns.row(r) for r in rows],
    )


async def csv_download(
    *, sessionmaker: async_sessionmaker[AsyncSession], query: ResultsQuery, limit: int | None
) -> AsyncIterator[str]:
    """The whole table as CSV text, streamed: the rows that exist now (at most ``limit``);
    rows added while it streams are not part of it."""
    async with sessionmaker() as session, session.begin():
        upto = await newest_key(session, query=query)
    return _csv(sessionmaker, query=query, upto=upto, limit=limit)


async def _csv(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    query: ResultsQuery,
    upto: Key | None,
    limit: int | None,
) -> AsyncIterator[str]:
    """Two passes over the same rows, a short transaction per batch (on SQLite every
    transaction holds the write lock): the column names first, then the rows."""
    columns = Columns()
    async for rows in _batches(sessionmaker, query=query, upto=upto, limit=limit):
        columns.add(rows)
    yield _csv_text(columns, [], header=True)
    async for rows in _batches(sessionmaker, query=query, upto=upto, limit=limit):
        yield _csv_text(columns, rows, header=False)


async def _batches(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    query: ResultsQuery,
    upto: Key | None,
    limit: int | None,
) -> AsyncIterator[list[Row[Any]]]:
    if upto is None:
        return
    after: Key | None = None
    left = limit
    while left is None or left > 0:
        size = min(left or CSV_BATCH_ROWS, CSV_BATCH_ROWS)
        async with sessionmaker() as session, session.begin():
            rows = list(await fetch_rows(session, query=query, after=after, upto=upto, limit=size))
        if not rows:
            return
        yield rows
        after = key_of(rows[-1])
        if left is not None:
            left -= len(rows)
        if len(rows) < size:
            return


def _csv_text(columns: Columns, rows: Sequence[Row[Any]], *, header: bool) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns.all, extrasaction="ignore")
    if header:
        writer.writeheader()
    for raw in rows:
        writer.writerow({k: _cell(v) for k, v in columns.row(raw).items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        return json.dumps(value)
    if isinstance(value, datetime):  # ISO 8601, as in the JSON table
        return value.isoformat()
    return value
