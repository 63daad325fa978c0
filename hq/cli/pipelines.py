"""`hq pipeline submit|show|list|cancel`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import yaml

from hq.cli.common import (
    CREATED,
    echo_json,
    echo_table,
    get_client,
    handle_errors,
    json_option,
    wait_option,
    when,
)
from hq.client import build
from hq.schemas.pipelines import PipelineCreate, PipelineRead


@click.group()
def pipeline() -> None:
    """Pipelines: steps that read datasets or each other's output files, reused by content."""


def _load(path: Path, name: str | None) -> PipelineCreate:
    try:
        spec: Any = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="FILE") from exc
    if not isinstance(spec, dict):
        raise click.BadParameter(f"{path} must hold a mapping: name, steps", param_hint="FILE")
    if name:
        spec["name"] = name
    return build(PipelineCreate, spec)


@pipeline.command("submit")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", default=None, help="the pipeline's name (default: the file's 'name')")
@click.option("--reuse/--no-reuse", default=None, help="reuse succeeded steps (default: yes)")
@wait_option("the end; exit 0 succeeded, 1 not, 3 not ended")
@json_option
@handle_errors
def submit(
    file: Path, name: str | None, reuse: bool | None, wait_s: float | None, as_json: bool
) -> None:
    """Submit the pipeline in FILE (YAML: name, steps); every step is checked first."""
    body = _load(file, name)
    if reuse is not None:
        body = body.model_copy(update={"reuse": reuse})
    with get_client() as client:
        created = client.pipelines.submit(body)
        click.echo(f"pipeline {created.id}: {len(created.steps)} steps", err=as_json)
        if wait_s is not None and not created.finished:
            created = client.pipelines.wait(created.id, timeout_s=wait_s)
    if as_json:
        echo_json(created)
    else:
        _echo_steps(created)
    if wait_s is not None:
        _exit_for_outcome(created)


def _exit_for_outcome(info: PipelineRead) -> None:
    if not info.finished:
        click.echo(
            f"pipeline {info.id} has not ended after the wait; follow it with "
            f"`hq pipeline show {info.id}`",
            err=True,
        )
        raise SystemExit(3)
    if info.status != "succeeded":
        click.echo(f"error: pipeline {info.id} {info.status}", err=True)
        raise SystemExit(1)


def _echo_steps(info: PipelineRead) -> None:
    click.echo(f"pipeline {info.id}  {info.name}  {info.status}")
    echo_table(
        [
            (
                s.name,
                s.script,
                s.status + (" (reused)" if s.reused else ""),
                ",".join(s.needs),
                s.job_id,
                s.reason or "",
            )
            for s in info.steps
        ],
        ["step", "script", "status", "reads from", "job", "reason"],
    )


@pipeline.command("show")
@click.argument("pipeline_id")
@json_option
@handle_errors
def show(pipeline_id: str, as_json: bool) -> None:
    """A pipeline's steps: status, what each reads from, its job, why it stopped."""
    with get_client() as client:
        info = client.pipelines.get(pipeline_id)
    if as_json:
        echo_json(info)
    else:
        _echo_steps(info)


@pipeline.command("list")
@click.option("--limit", type=int, default=20)
@click.option("--cursor", default=None)
@json_option
@handle_errors
def list_(limit: int, cursor: str | None, as_json: bool) -> None:
    """Pipelines, newest first."""
    with get_client() as client:
        page = client.pipelines.list(limit=limit, cursor=cursor)
    if as_json:
        echo_json(page)
        return
    echo_table(
        [(p.id, p.name, p.status, len(p.steps), when(p.created_at)) for p in page.items],
        ["id", "name", "status", "steps", CREATED],
    )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@pipeline.command("cancel")
@click.argument("pipeline_id")
@json_option
@handle_errors
def cancel(pipeline_id: str, as_json: bool) -> None:
    """Cancel a pipeline's unfinished steps."""
    with get_client() as client:
        info = client.pipelines.cancel(pipeline_id)
    if as_json:
        echo_json(info)
    else:
        _echo_steps(info)
