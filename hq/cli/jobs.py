"""`hq job submit|list|show|logs|artifacts|cancel` (submit in job_submit.py)."""

from __future__ import annotations

import json
from pathlib import Path

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
from hq.cli.job_submit import submit
from hq.schemas.results import metric_text


@click.group()
def job() -> None:
    """Submit and inspect jobs."""


job.add_command(submit)


@job.command("list")
@click.option("--status", default=None, help="comma-separated statuses")
@click.option("--script", default=None)
@click.option("--sweep", default=None)
@click.option("--queue", default=None)
@click.option("--sort", default="-created_at")
@click.option("--limit", type=int, default=20)
@click.option("--cursor", default=None)
@json_option
@handle_errors
def list_(
    status: str | None,
    script: str | None,
    sweep: str | None,
    queue: str | None,
    sort: str,
    limit: int,
    cursor: str | None,
    as_json: bool,
) -> None:
    """Jobs, newest first (filter by status, script, sweep or queue; page with --cursor)."""
    with get_client() as client:
        page = client.list_jobs(
            status=status,
            script=script,
            sweep=sweep,
            queue=queue,
            sort=sort,
            limit=limit,
            cursor=cursor,
        )
    if as_json:
        echo_json(page)
        return
    echo_table(
        [
            (
                j.id,
                f"{j.script}@{j.script_version}",
                j.status,
                j.attempts,
                when(j.created_at),
                j.failure_reason or "",
            )
            for j in page.items
        ],
        ["id", "script", "status", "attempts", CREATED, "reason"],
    )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@job.command("show")
@click.argument("job_id")
@json_option
@handle_errors
def show(job_id: str, as_json: bool) -> None:
    """One job: params, inputs, timeline, metrics and tables."""
    with get_client() as client:
        detail = client.get_job(job_id)
        result = client.job_result(job_id) if detail.status.finished else None
    if as_json:
        echo_json(
            {
                "job": detail.model_dump(mode="json"),
                "result": result.model_dump(mode="json") if result else None,
            }
        )
        return
    how = (
        f"reused the result of job {detail.reused_from}"
        if detail.reused_from
        else f"attempt {detail.attempts}/{detail.max_attempts}"
    ) + (f", script retries {detail.script_retries}/{detail.max_retries}" * bool(detail.retry_on))
    click.echo(
        f"job      {detail.id}\nscript   {detail.script}@{detail.script_version}\n"
        f"status   {detail.status}  ({how})"
    )
    if detail.failure_reason:
        click.echo(f"reason   {detail.failure_reason}")
    if detail.unschedulable_reason:
        click.echo(f"waiting  {detail.unschedulable_reason}")
    limits = detail.resources
    click.echo(
        f"limits   memory {limits.get('memory')}, cpus {limits.get('cpus')}, "
        f"timeout {detail.timeout_s} s"
    )
    click.echo(f"params   {json.dumps(detail.params, sort_keys=True)}")
    for name, ref in detail.inputs.items():
        click.echo(f"input    {name} = {ref.dataset}@{ref.version} ({ref.sha256[:12]})")
    for event in detail.events:
        stamp = f"{when(event.at)}.{event.at.microsecond // 1000:03d}"
        click.echo(f"  {stamp} {event.kind} {event.detail or ''}".rstrip())
    if result:
        for name, value in sorted(result.metrics.items()):
            click.echo(f"metric   {name} = {metric_text(value)}")
        for name, rows in result.tables.items():
            click.echo(f"table    {name} ({len(rows)} rows)")


@job.command("logs")
@click.argument("job_id")
@click.option("-f", "--follow", is_flag=True, help="stream until the job ends")
@handle_errors
def logs(job_id: str, follow: bool) -> None:
    """A job's output (of its last attempt); a reused job shows the job that made its result."""
    with get_client() as client:
        origin = client.get_job(job_id).reused_from
        if origin is not None:
            click.echo(f"job {job_id} reused the result of job {origin}; its logs:", err=True)
            job_id = origin
        if follow:
            for chunk in client.follow_logs(job_id):
                click.echo(chunk, nl=False)
        else:
            click.echo(client.job_logs(job_id), nl=False)


@job.command("artifacts")
@click.argument("job_id")
@click.argument("paths", nargs=-1)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="download into this folder (all artifacts, or the PATHS named), checked by sha256",
)
@handle_errors
def artifacts(job_id: str, paths: tuple[str, ...], output: Path | None) -> None:
    """The files a job wrote to /hq/outputs: listed, or downloaded with -o."""
    with get_client() as client:
        origin = client.get_job(job_id).reused_from
        if origin is not None:
            click.echo(f"job {job_id} reused the result of job {origin}; its artifacts:", err=True)
            job_id = origin
        found = {a.path: a for a in client.list_artifacts(job_id)}
        for path in paths:
            if path not in found:
                raise click.ClickException(f"job {job_id} has no artifact {path!r}")
        chosen = [found[p] for p in paths] if paths else list(found.values())
        if output is None:
            echo_table(
                [(a.path, a.size, a.sha256[:12]) for a in chosen], ["path", "size", "sha256"]
            )
            return
        for item in chosen:
            dest = output.joinpath(*item.path.split("/"))
            dest.parent.mkdir(parents=True, exist_ok=True)
            client.download_artifact(job_id, item.path, dest, sha256=item.sha256)
        click.echo(f"wrote {len(chosen)} artifacts under {output}", err=True)


@job.command("cancel")
@click.argument("job_id")
@handle_errors
def cancel(job_id: str) -> None:
    """Cancel a queued job, or ask a running one to stop."""
    with get_client() as client:
        cancelled = client.cancel_job(job_id)
    state = (
        "cancel requested"
        if cancelled.cancel_requested and not cancelled.status.finished
        else cancelled.status
    )
    click.echo(f"{cancelled.id}  {state}")
