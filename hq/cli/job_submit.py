"""`hq job submit`: one job of a script, its params, inputs, limits and retries."""

from __future__ import annotations

import click

from hq.cli.common import echo_json, get_client, handle_errors, json_option, wait_option
from hq.cli.params import (
    parse_inputs,
    parse_params,
    resource_options,
    resources_field,
    retry_options,
    string_params,
)
from hq.client import build
from hq.schemas.common import JobStatus
from hq.schemas.jobs import JobCreate, JobRead
from hq.schemas.results import metric_text

LOG_TAIL_LINES = 10


@click.command("submit")
@click.argument("script")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    help="key=value (JSON where it parses, text where the schema wants a string)",
)
@click.option("--params-json", help="all params as one JSON object")
@click.option("-i", "--input", "inputs", multiple=True, help="name=dataset[@version]")
@click.option("--priority", type=int, default=0)
@click.option("--queue", default="default")
@click.option("--label", "labels", multiple=True)
@click.option("--max-attempts", type=int, default=3)
@click.option("--timeout", "timeout_s", type=int, default=None, help="seconds")
@resource_options
@retry_options
@click.option("--reuse/--no-reuse", default=False, help="reuse a succeeded identical job")
@click.option("--idempotency-key", default=None)
@wait_option("the end; exit 0 succeeded, 1 failed, 3 still running")
@json_option
@handle_errors
def submit(
    script: str,
    params: tuple[str, ...],
    params_json: str | None,
    inputs: tuple[str, ...],
    priority: int,
    queue: str,
    labels: tuple[str, ...],
    max_attempts: int,
    timeout_s: int | None,
    memory: str | None,
    cpus: float | None,
    retry_on: list[str],
    max_retries: int,
    reuse: bool,
    idempotency_key: str | None,
    wait_s: float | None,
    as_json: bool,
) -> None:
    """Submit SCRIPT[@VERSION] as a job."""
    fields = {
        "script": script,
        "params": parse_params(params, params_json),
        "inputs": parse_inputs(inputs),
        "priority": priority,
        "queue": queue,
        "labels": list(labels),
        "max_attempts": max_attempts,
        "timeout_s": timeout_s,
        "resources": resources_field(memory=memory, cpus=cpus),
        "reuse": reuse,
        "retry_on": retry_on,
        "max_retries": max_retries,
    }
    request = build(JobCreate, fields)  # refuses bad values before any request is made
    with get_client() as client:
        keep_text = string_params(client, script) if params else frozenset()
        if keep_text:
            fields["params"] = parse_params(params, params_json, keep_text)
            request = build(JobCreate, fields)
        created = client.submit_job(request, idempotency_key=idempotency_key, wait_s=wait_s)
    if as_json:
        echo_json(created)
    else:
        _echo_submitted(created)
    if wait_s is not None:
        _exit_for_outcome(created)


def _echo_submitted(created: JobRead) -> None:
    click.echo(f"{created.id}  {created.status}")
    if created.unschedulable_reason:
        click.echo(f"warning: {created.unschedulable_reason}", err=True)
    if created.status.finished and created.metrics:
        for name, value in sorted(created.metrics.items()):
            click.echo(f"  {name} = {metric_text(value)}")


def _exit_for_outcome(job: JobRead) -> None:
    """With --wait, the exit code says how it ended: 0 succeeded, 1 did not, 3 still running."""
    if job.status == JobStatus.succeeded:
        return
    if not job.status.finished:
        click.echo(
            f"job {job.id} is still {job.status} after the wait; follow it with "
            f"`hq job logs -f {job.id}`, or see it with `hq job show {job.id}`",
            err=True,
        )
        raise SystemExit(3)
    click.echo(f"error: job {job.id} {job.status}: {job.failure_reason or ''}".rstrip(), err=True)
    with get_client() as client:
        tail = client.job_logs(job.id).splitlines()[-LOG_TAIL_LINES:]
    if tail:
        click.echo(f"last {len(tail)} log line(s):", err=True)
        for line in tail:
            click.echo(f"  {line}", err=True)
    raise SystemExit(1)
