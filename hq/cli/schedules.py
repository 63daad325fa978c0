"""`hq schedule create|list|show|pause|resume|delete`."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from hq.cli.common import (
    CREATED,
    echo_json,
    echo_table,
    get_client,
    handle_errors,
    json_option,
    when,
)
from hq.client import build
from hq.schemas.schedules import ScheduleCreate, ScheduleKind, ScheduleRead


def _body(text: str) -> dict[str, Any]:
    """``--body`` as JSON text, or ``@file.json`` (``@-``: standard input)."""
    if text.startswith("@"):
        name = text[1:]
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--body") from exc
    if not isinstance(value, dict):
        raise click.BadParameter(
            "give a JSON object: the job's or sweep's submit body", param_hint="--body"
        )
    return value


@click.group()
def schedule() -> None:
    """Jobs and sweeps submitted on a cron expression or a fixed interval."""


@schedule.command("create")
@click.argument("name")
@click.option(
    "--kind", type=click.Choice([k.value for k in ScheduleKind]), default="job", show_default=True
)
@click.option(
    "--body",
    "body_text",
    required=True,
    help='the submit body as JSON (\'{"script": "fit", "params": {"n": 3}}\'), or @file.json',
)
@click.option("--cron", default=None, help="5 fields: minute hour day-of-month month day-of-week")
@click.option("--timezone", default="UTC", show_default=True, help="IANA zone of --cron")
@click.option("--every", "interval_s", type=int, default=None, help="seconds between runs")
@click.option(
    "--start-at",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M%z"]),
    default=None,
    help="with --every: the first slot, e.g. 2026-01-01T02:00+0000",
)
@click.option(
    "--catch-up",
    type=click.Choice(["skip", "once"]),
    default="skip",
    show_default=True,
    help="slots missed while HQ was down: skip them, or run once for the latest",
)
@click.option("--paused", is_flag=True, help="create it paused")
@json_option
@handle_errors
def create(
    name: str,
    kind: str,
    body_text: str,
    cron: str | None,
    timezone: str,
    interval_s: int | None,
    start_at: datetime | None,
    catch_up: str,
    paused: bool,
    as_json: bool,
) -> None:
    """Create schedule NAME; its body is checked now as its first run would be."""
    request = build(
        ScheduleCreate,
        {
            "name": name,
            "kind": kind,
            "body": _body(body_text),
            "cron": cron,
            "timezone": timezone,
            "interval_s": interval_s,
            "start_at": start_at,
            "catch_up": catch_up,
            "paused": paused,
        },
    )
    with get_client() as client:
        created = client.create_schedule(request)
    if as_json:
        echo_json(created)
        return
    click.echo(f"schedule {created.id}: {created.timing}, next {_next(created)}")


def _next(s: ScheduleRead) -> str:
    if s.paused:
        return "paused"
    return when(s.next_at) if s.next_at else "never"


@schedule.command("list")
@click.option("--limit", type=int, default=50)
@click.option("--cursor", default=None)
@json_option
@handle_errors
def list_(limit: int, cursor: str | None, as_json: bool) -> None:
    """Schedules, newest first, with their next slot and last run."""
    with get_client() as client:
        page = client.list_schedules(limit=limit, cursor=cursor)
    if as_json:
        echo_json(page)
        return
    rows = []
    for s in page.items:
        last = s.last_run
        made = (last.job_id or last.sweep_id or last.error or "") if last else ""
        rows.append(
            (
                s.id,
                s.name,
                s.kind,
                s.timing,
                _next(s),
                when(last.slot_at) if last else "",
                made,
                when(s.created_at),
            )
        )
    echo_table(rows, ["id", "name", "kind", "when", "next (UTC)", "last run", "made", CREATED])
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@schedule.command("show")
@click.argument("schedule_id")
@click.option("--runs", "n_runs", type=int, default=20, show_default=True, help="runs to list")
@json_option
@handle_errors
def show(schedule_id: str, n_runs: int, as_json: bool) -> None:
    """A schedule and its latest runs, with the job or sweep each submitted."""
    with get_client() as client:
        info = client.get_schedule(schedule_id)
        runs = client.schedule_runs(schedule_id, limit=n_runs).items if n_runs > 0 else []
    if as_json:
        echo_json(
            {
                "schedule": info.model_dump(mode="json"),
                "runs": [r.model_dump(mode="json") for r in runs],
            }
        )
        return
    click.echo(
        f"schedule {info.id}  {info.name}  {info.kind}  {info.timing}  catch-up {info.catch_up}"
    )
    click.echo(f"next: {_next(info)}  skipped: {info.skipped}")
    if info.paused_reason:
        click.echo(f"paused: {info.paused_reason}")
    click.echo(f"body: {json.dumps(info.body, sort_keys=True)}")
    echo_table(
        [(when(r.slot_at), r.job_id or "", r.sweep_id or "", r.error or "") for r in runs],
        ["slot (UTC)", "job", "sweep", "error"],
    )


def _set(schedule_id: str, *, paused: bool, as_json: bool) -> None:
    with get_client() as client:
        info = client.pause_schedule(schedule_id) if paused else client.resume_schedule(schedule_id)
    if as_json:
        echo_json(info)
    else:
        click.echo(f"schedule {info.id}: next {_next(info)}")


@schedule.command("pause")
@click.argument("schedule_id")
@json_option
@handle_errors
def pause(schedule_id: str, as_json: bool) -> None:
    """Stop firing until resumed."""
    _set(schedule_id, paused=True, as_json=as_json)


@schedule.command("resume")
@click.argument("schedule_id")
@json_option
@handle_errors
def resume(schedule_id: str, as_json: bool) -> None:
    """Fire again from the next slot to come (slots passed while paused are not run)."""
    _set(schedule_id, paused=False, as_json=as_json)


@schedule.command("delete")
@click.argument("schedule_id")
@handle_errors
def delete(schedule_id: str) -> None:
    """Delete the schedule and its run records; the jobs and sweeps it made stay."""
    with get_client() as client:
        client.delete_schedule(schedule_id)
    click.echo(f"schedule {schedule_id} deleted")
