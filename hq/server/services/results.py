"""The flat results table: one row per job, its params and metrics side by side."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import JobStatus
from hq.schemas.sweeps import ResultsTable
from hq.server.db.models import Job

MAX_RESULT_ROWS = 100_000
FIXED_COLUMNS = ("job_id", "status", "script_version", "sweep_id", "repeat", "finished_at")


async def results_table(
    session: AsyncSession,
    *,
    script: str | None = None,
    sweep_id: str | None = None,
    job_ids: list[str] | None = None,
    statuses: list[str] | None = None,
    limit: int = MAX_RESULT_ROWS,
) -> ResultsTable:
    if not (script or sweep_id or job_ids):
        raise errors.ValidationFailed("name a script, a sweep or jobs", field="script")
    for status in statuses or []:
        if status not in JobStatus.__members__:
            raise errors.ValidationFailed(f"unknown status {status!r}", field="status")
    stmt = select(
        Job.id,
        Job.status,
        Job.script_version,
        Job.sweep_id,
        Job.repeat,
        Job.finished_at,
        Job.params,
        Job.metrics,
    )
    if script:
        stmt = stmt.where(Job.script_name == script)
    if sweep_id:
        stmt = stmt.where(Job.sweep_id == sweep_id)
    if job_ids:
        stmt = stmt.where(Job.id.in_(job_ids))
    if statuses:
        stmt = stmt.where(Job.status.in_(statuses))
    rows = (await session.execute(stmt.order_by(Job.created_at, Job.id).limit(limit))).all()
    params: dict[str, None] = {}
    metrics: dict[str, None] = {}
    out: list[dict[str, Any]] = []
    for job_id, status, version, sweep, repeat, finished_at, p, m in rows:
        row: dict[str, Any] = {
            "job_id": job_id,
            "status": status,
            "script_version": version,
            "sweep_id": sweep,
            "repeat": repeat,
            "finished_at": finished_at,
        }
        for name, value in (p or {}).items():
            params.setdefault(name)
            row[name] = value
        for name, value in (m or {}).items():
            metrics.setdefault(name)
            row[name if name not in params else f"metric.{name}"] = value
        out.append(row)
    param_columns = sorted(params)
    metric_columns = sorted(n if n not in params else f"metric.{n}" for n in metrics)
    return ResultsTable(
        columns=[*FIXED_COLUMNS, *param_columns, *metric_columns],
        param_columns=param_columns,
        metric_columns=metric_columns,
        rows=out,
    )


def to_csv(table: ResultsTable) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=table.columns, extrasaction="ignore")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list | dict):
        import json

        return json.dumps(value)
    return value
