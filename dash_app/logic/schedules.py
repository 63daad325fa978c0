"""Rows of the schedules page, from the API's schedules and runs (pure: unit-tested)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash_app.logic.views import short_time
from hq.schemas.schedules import ScheduleRead, ScheduleRunRead


def schedule_rows(schedules: Sequence[ScheduleRead]) -> list[dict[str, Any]]:
    """One grid row per schedule: when it fires, its next slot, paused, its last run."""
    rows = []
    for s in schedules:
        last = s.last_run
        rows.append(
            {
                "name": s.name,
                "kind": s.kind,
                "when": s.timing,
                "next_at": ""
                if s.paused
                else short_time(s.next_at.isoformat() if s.next_at else None),
                "paused": "paused" if s.paused else "",
                "last_run": short_time(last.slot_at.isoformat()) if last else "",
                "last_result": _made(last) if last else "",
                "skipped": s.skipped,
                "catch_up": s.catch_up,
                "id": s.id,
            }
        )
    return rows


def _made(run: ScheduleRunRead) -> str:
    if run.error:
        return f"error: {run.error}"
    if run.job_id:
        return f"job {run.job_id[:8]}"
    if run.sweep_id:
        return f"sweep {run.sweep_id[:8]}"
    if run.pipeline_id:
        return f"pipeline {run.pipeline_id[:8]}"
    return ""


def run_link(run: ScheduleRunRead) -> tuple[str, str] | None:
    """(text, href) of what the run submitted: its job's page, its sweep's compare page, or its
    pipeline's page."""
    if run.job_id:
        return f"job {run.job_id}", f"/jobs/{run.job_id}"
    if run.sweep_id:
        return f"sweep {run.sweep_id}", f"/compare?sweep={run.sweep_id}"
    if run.pipeline_id:
        return f"pipeline {run.pipeline_id}", f"/pipelines/{run.pipeline_id}"
    return None
