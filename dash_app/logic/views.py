"""Rows and columns for the job, dataset, agent and webhook views, built from API models as
JSON."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

TIMELINE_KINDS_ORDER = ("queued", "started", "ended")


def table_columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The columns of a list of row dicts, in first-seen order."""
    columns: list[str] = []
    seen: set[str] = set()
    for row in rows:
        for key in row:
            if key not in seen:
                seen.add(key)
                columns.append(key)
    return columns


NUMBER_FORMAT = {
    "function": "params.value == null ? '' : (Number.isInteger(params.value) ? "
    "String(params.value) : d3.format('.6~g')(params.value))"
}


def column_defs(
    columns: Sequence[str], rows: Sequence[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """AG Grid columnDefs: numeric columns get a number filter and right alignment."""
    defs: list[dict[str, Any]] = []
    for col in columns:
        values = [r.get(col) for r in rows if r.get(col) is not None]
        is_number = bool(values) and all(
            isinstance(v, int | float) and not isinstance(v, bool) for v in values
        )
        defs.append(
            {
                "field": col,
                "headerName": col,
                "filter": "agNumberColumnFilter" if is_number else "agTextColumnFilter",
                "type": "numericColumn" if is_number else None,
                "valueFormatter": NUMBER_FORMAT if is_number else None,
            }
        )
    return [{k: v for k, v in d.items() if v is not None} for d in defs]


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def short_time(value: str | None) -> str:
    """ISO timestamp -> 'YYYY-MM-DD HH:MM:SS' (UTC, as HQ stores it), '' for none."""
    if not value:
        return ""
    return str(value).replace("T", " ")[:19]


def timeline(job: dict[str, Any]) -> list[dict[str, Any]]:
    """A job (JobDetail as JSON) -> timeline rows, oldest first: its events, or, for a job
    without events, the queued/started/ended times."""
    rows = [
        {
            "when": short_time(e.get("at")),
            "what": e.get("kind"),
            "attempt": e.get("attempt"),
            "agent": e.get("agent_id") or "",
            "detail": e.get("detail") or "",
        }
        for e in job.get("events", [])
    ]
    if not rows:
        agent = job.get("agent_id") or ""
        rows.append(
            {
                "when": short_time(job.get("created_at")),
                "what": "queued",
                "attempt": 0,
                "agent": "",
                "detail": f"queue {job.get('queue')}",
            }
        )
        if job.get("started_at"):
            rows.append(
                {
                    "when": short_time(job["started_at"]),
                    "what": "started",
                    "attempt": job.get("attempts"),
                    "agent": agent,
                    "detail": "",
                }
            )
        if job.get("finished_at"):
            rows.append(
                {
                    "when": short_time(job["finished_at"]),
                    "what": job.get("status"),
                    "attempt": job.get("attempts"),
                    "agent": agent,
                    "detail": job.get("failure_reason") or "",
                }
            )
    return sorted(rows, key=lambda r: str(r["when"]))


def job_summary(job: dict[str, Any]) -> list[tuple[str, str]]:
    """Label/value pairs for the head of the job page."""
    wait = _seconds_between(job.get("created_at"), job.get("started_at"))
    run = _seconds_between(job.get("started_at"), job.get("finished_at"))
    pairs = [
        ("script", f"{job['script']} v{job.get('script_version')}"),
        ("image", f"{job.get('image')} ({str(job.get('digest'))[:19]}…)"),
        ("queued", str(job.get("created_at") or "")),
        ("started", str(job.get("started_at") or "—")),
        ("ended", str(job.get("finished_at") or "—")),
        ("waited", "—" if wait is None else f"{wait:.1f} s"),
        ("ran", "—" if run is None else f"{run:.1f} s"),
        ("attempts", f"{job.get('attempts')} of {job.get('max_attempts')}"),
        ("agent", job.get("agent_id") or "—"),
        ("queue", f"{job.get('queue')} (priority {job.get('priority')})"),
        ("exit code", "—" if job.get("exit_code") is None else str(job["exit_code"])),
    ]
    for label, key in (
        ("failure", "failure_reason"),
        ("unschedulable", "unschedulable_reason"),
        ("result reused from", "reused_from"),
        ("sweep", "sweep_id"),
    ):
        if job.get(key):
            pairs.append((label, str(job[key])))
    return pairs


def job_view_key(job: dict[str, Any]) -> dict[str, Any]:
    """What the job page shows besides logs: when it is unchanged, nothing is redrawn."""
    return {
        "status": job.get("status"),
        "attempts": job.get("attempts"),
        "events": len(job.get("events", [])),
        "agent": job.get("agent_id"),
        "cancel_requested": job.get("cancel_requested"),
    }


def input_rows(job: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "input": name,
            "dataset": ref.get("dataset"),
            "version": ref.get("version"),
            "file": ref.get("filename"),
            "size": ref.get("size"),
            "sha256": ref.get("sha256"),
        }
        for name, ref in (job.get("inputs") or {}).items()
    ]


def agent_rows(agents: Sequence[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Agents as grid rows, with slots in use and seconds since the last heartbeat."""
    rows = []
    for a in agents:
        seen = datetime.fromisoformat(a["last_seen_at"])
        rows.append(
            {
                "id": a["id"],
                "name": a["name"],
                "status": a["status"],
                "labels": ", ".join(a.get("labels", [])),
                "queues": ", ".join(a.get("queues", [])),
                "slots": f"{a.get('running', 0)}/{a.get('capacity')}",
                "gpus": a.get("gpus", 0),
                "last_heartbeat": a["last_seen_at"],
                "heartbeat_age_s": round((now - seen).total_seconds(), 1),
                "drain_requested": bool(a.get("drain_requested")),
                "warm": ", ".join(f"{k}: {v}" for k, v in sorted((a.get("warm") or {}).items())),
                "not_free": a.get("not_free") or "",
                "paused": a.get("paused", 0),
            }
        )
    return rows


def version_rows(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "version": v["version"],
            "filename": v["filename"],
            "size": v["size"],
            "sha256": v["sha256"],
            "rows": v.get("rows"),
            "produced_by_job": v.get("produced_by_job") or "",
            "created_at": v["created_at"],
        }
        for v in sorted(dataset.get("versions", []), key=lambda v: -int(v["version"]))
    ]


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


LOG_TAIL_CHARS = 200_000


def log_tail(text: str, max_chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a long log, cut at a line start, saying how much was left out."""
    if len(text) <= max_chars:
        return text
    tail = text[-max_chars:]
    cut = tail.find("\n")
    tail = tail[cut + 1 :] if cut >= 0 else tail
    return f"[… {len(text) - len(tail)} earlier characters not shown]\n{tail}"


def rerun_request(job: dict[str, Any]) -> dict[str, Any]:
    """A JobCreate body that reruns a job: the same pinned script version, params and inputs."""
    return {
        "script": f"{job['script']}@{job['script_version']}",
        "params": job.get("params") or {},
        "inputs": {
            name: f"{ref['dataset']}@{ref['version']}"
            for name, ref in (job.get("inputs") or {}).items()
        },
        "priority": job.get("priority", 0),
        "queue": job.get("queue", "default"),
        "labels": job.get("labels") or [],
        "max_attempts": job.get("max_attempts", 3),
        "timeout_s": job.get("timeout_s"),
        "resources": _rerun_limits(job.get("resources") or {}),
        "reuse": False,
    }


def _rerun_limits(resources: dict[str, Any]) -> dict[str, Any] | None:
    """The memory and CPUs the job ran with (maybe raised at submit), for its rerun."""
    limits = {k: resources[k] for k in ("memory", "cpus") if resources.get(k) is not None}
    return limits or None


def lineage_rows(lineage: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    if lineage.get("produced_by_job"):
        rows.append({"relation": "produced by", "job": lineage["produced_by_job"]})
    rows += [{"relation": "read by", "job": j} for j in lineage.get("read_by_jobs", [])]
    return rows


def webhook_rows(webhooks: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Webhooks as grid rows (the API never sends their secrets)."""
    return [
        {
            "id": w["id"],
            "url": w["url"],
            "events": ", ".join(w.get("events", [])),
            "failures_only": bool(w.get("failures_only")),
            "script": w.get("script") or "",
            "description": w.get("description") or "",
            "created_at": w["created_at"],
        }
        for w in webhooks
    ]


def delivery_rows(deliveries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """A webhook's deliveries as grid rows: each try's status code (or 'error'), in order."""
    return [
        {
            "id": d["id"],
            "created_at": d["created_at"],
            "event": d["event"],
            "subject": d["subject_id"],
            "status": d["status"],
            "attempts": d["attempts"],
            "tries": ", ".join(
                str(t["status_code"]) if t.get("status_code") is not None else "error"
                for t in d.get("tries", [])
            ),
            "last_status_code": d.get("last_status_code"),
            "last_error": d.get("last_error") or "",
            "next_attempt_at": d.get("next_attempt_at") or "",
        }
        for d in deliveries
    ]
