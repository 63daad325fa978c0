"""Rows of the pipelines list and of one pipeline's steps, from PipelineRead dicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash_app.logic.views import short_time

# A step is done when it succeeded (a reused step has, too); failed or cancelled is not done.
DONE = "succeeded"


def steps_done(pipeline: dict[str, Any]) -> str:
    steps = pipeline.get("steps", [])
    return f"{sum(1 for s in steps if s.get('status') == DONE)}/{len(steps)}"


def pipeline_row(pipeline: dict[str, Any]) -> dict[str, Any]:
    """One row of the pipelines grid."""
    return {
        "id": pipeline["id"],
        "name": pipeline["name"],
        "status": pipeline["status"],
        "steps": steps_done(pipeline),
        "created_at": short_time(pipeline.get("created_at")),
        "finished_at": short_time(pipeline.get("finished_at")),
        "created_by": pipeline.get("created_by") or "",
    }


def pipeline_href(row: dict[str, Any] | None) -> str | None:
    return f"/pipelines/{row['id']}" if row and row.get("id") else None


def step_href(step: dict[str, Any]) -> str | None:
    """Where a step's work is shown: its job's page, or its sweep's comparison."""
    if step.get("job_id"):
        return f"/jobs/{step['job_id']}"
    if step.get("sweep_id"):
        return f"/compare?sweep={step['sweep_id']}"
    return None


def step_hrefs(steps: Sequence[dict[str, Any]]) -> dict[str, str]:
    return {s["name"]: href for s in steps if (href := step_href(s))}


def step_rows(pipeline: dict[str, Any]) -> list[dict[str, Any]]:
    """The steps table: name, script, status, reused (from which job), what it reads, the
    link to its job or sweep and the reason a failed or cancelled step gives."""
    rows = []
    for step in pipeline.get("steps", []):
        href = step_href(step)
        rows.append(
            {
                "name": step["name"],
                "script": step.get("script", ""),
                "status": step["status"],
                "reused": "yes" if step.get("reused") else "",
                "reused_from": step.get("reused_from") or "",
                "needs": ", ".join(step.get("needs", [])),
                "href": href,
                "link": ("sweep " if step.get("sweep_id") else "job ")
                + str(step.get("sweep_id") or step.get("job_id") or "")[:8]
                if href
                else "",
                "reason": step.get("reason") or "",
            }
        )
    return rows


def pipeline_view_key(pipeline: dict[str, Any]) -> dict[str, Any]:
    """What the page shows; the page redraws only when this changed."""
    return {
        "status": pipeline["status"],
        "finished_at": pipeline.get("finished_at"),
        "steps": [
            [
                s["name"],
                s["status"],
                s.get("reused"),
                s.get("job_id"),
                s.get("sweep_id"),
                s.get("reason"),
            ]
            for s in pipeline.get("steps", [])
        ],
    }
