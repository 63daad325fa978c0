"""`hq sweep submit|list|show`."""

from __future__ import annotations

import json
from typing import Any

import click

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
from hq.cli.params import (
    cli_value,
    json_value,
    parse_inputs,
    parse_params,
    resource_options,
    resources_field,
    retry_options,
    string_params,
)
from hq.client import build
from hq.schemas.common import JobStatus
from hq.schemas.sweeps import SweepCreate, SweepRead


def parse_grid(
    pairs: tuple[str, ...], keep_text: frozenset[str] = frozenset()
) -> dict[str, list[Any]]:
    """``-g alpha=0.1,1,10`` or ``-g alpha='[0.1, 1, 10]'``. The values of the params in
    ``keep_text`` (typed as strings by the schema) stay text: ``-g target=1,2`` is ``["1", "2"]``,
    and so is ``-g target='[1, 2]'``."""
    grid: dict[str, list[Any]] = {}
    for pair in pairs:
        key, sep, values = pair.partition("=")
        if not sep or not key or not values:
            raise click.BadParameter(f"{pair!r} is not name=v1,v2,...", param_hint="-g")
        as_text = key in keep_text
        try:
            loaded = json_value(values)
        except ValueError:
            grid[key] = [cli_value(v, as_text=as_text) for v in values.split(",")]
            continue
        if not isinstance(loaded, list):
            grid[key] = [cli_value(values, as_text=as_text)]
        elif as_text:  # numbers written in a JSON list, for a string param, are their text
            grid[key] = [json.dumps(v) if _json_number(v) else v for v in loaded]
        else:
            grid[key] = loaded
    return grid


def _json_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


@click.group()
def sweep() -> None:
    """Parameter sweeps: many jobs, one results table."""


@sweep.command("submit")
@click.argument("script")
@click.option("-g", "--grid", "grid", multiple=True, help="name=v1,v2,... (a grid axis)")
@click.option("-p", "--param", "params", multiple=True, help="fixed key=value")
@click.option("--params-json", default=None)
@click.option("-i", "--input", "inputs", multiple=True, help="name=dataset[@version]")
@click.option(
    "--random",
    "random_json",
    default=None,
    help='random draws as JSON: {"n": 20, "seed": 1, "params": {"alpha": '
    '{"low": 0.01, "high": 10, "log": true}}}',
)
@click.option("--repeats", type=int, default=1)
@click.option("--priority", type=int, default=0)
@click.option("--queue", default="default")
@click.option("--reuse/--no-reuse", default=True)
@click.option("--timeout", "timeout_s", type=int, default=None, help="seconds, for each job")
@resource_options
@retry_options
@click.option(
    "--max-failures",
    type=int,
    default=None,
    help="once more jobs than this have failed, cancel those not started",
)
@wait_option("every job; exit 0 all succeeded, 1 some did not, 3 not ended")
@json_option
@handle_errors
def submit(
    script: str,
    grid: tuple[str, ...],
    params: tuple[str, ...],
    params_json: str | None,
    inputs: tuple[str, ...],
    random_json: str | None,
    repeats: int,
    priority: int,
    queue: str,
    reuse: bool,
    timeout_s: int | None,
    memory: str | None,
    cpus: float | None,
    retry_on: list[str],
    max_retries: int,
    max_failures: int | None,
    wait_s: float | None,
    as_json: bool,
) -> None:
    """Expand a grid (and/or random draws) times repeats into jobs of SCRIPT."""
    fields = {
        "script": script,
        "grid": parse_grid(grid),
        "params": parse_params(params, params_json),
        "inputs": parse_inputs(inputs),
        "random": _random_spec(random_json),
        "repeats": repeats,
        "priority": priority,
        "queue": queue,
        "reuse": reuse,
        "timeout_s": timeout_s,
        "resources": resources_field(memory=memory, cpus=cpus),
        "retry_on": retry_on,
        "max_retries": max_retries,
        "max_failures": max_failures,
    }
    request = build(SweepCreate, fields)  # refuses bad values before any request is made
    with get_client() as client:
        keep_text = string_params(client, script) if grid or params else frozenset()
        if keep_text:
            fields["grid"] = parse_grid(grid, keep_text)
            fields["params"] = parse_params(params, params_json, keep_text)
            request = build(SweepCreate, fields)
        created = client.submit_sweep(request)
        # the id first, so a wait cut short (Ctrl-C, a lost connection) still names the sweep
        click.echo(f"sweep {created.id}: {created.total} jobs", err=as_json)
        if wait_s is not None and not created.finished:
            created = client.wait_sweep(created.id, timeout_s=wait_s)
    if as_json:
        echo_json(created)
    elif wait_s is not None:
        click.echo(created.counts_text)
    if wait_s is not None:
        _exit_for_outcome(created)


def _random_spec(random_json: str | None) -> Any:
    if not random_json:
        return None
    try:
        return json_value(random_json)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--random") from exc


def _exit_for_outcome(info: SweepRead) -> None:
    """With --wait, the exit code says how it ended: 0 all succeeded, 1 not all, 3 not ended."""
    if not info.finished:
        click.echo(
            f"sweep {info.id} has not ended after the wait ({info.counts_text}); "
            f"follow it with `hq sweep show {info.id}`",
            err=True,
        )
        raise SystemExit(3)
    if info.counts.get(JobStatus.succeeded.value, 0) != info.total:
        click.echo(
            f"error: sweep {info.id}: not every job succeeded ({info.counts_text}); "
            f"see `hq sweep show {info.id} --results`",
            err=True,
        )
        raise SystemExit(1)


@sweep.command("list")
@click.option("--script", default=None)
@click.option("--limit", type=int, default=20)
@click.option("--cursor", default=None)
@json_option
@handle_errors
def list_(script: str | None, limit: int, cursor: str | None, as_json: bool) -> None:
    """Sweeps, newest first, with their jobs counted by status."""
    with get_client() as client:
        page = client.list_sweeps(script=script, limit=limit, cursor=cursor)
    if as_json:
        echo_json(page)
        return
    echo_table(
        [
            (
                s.id,
                f"{s.script}@{s.script_version}",
                s.total,
                s.counts_text,
                when(s.created_at),
            )
            for s in page.items
        ],
        ["id", "script", "jobs", "status", CREATED],
    )
    if page.next_cursor:
        click.echo(f"more: --cursor {page.next_cursor}")


@sweep.command("show")
@click.argument("sweep_id")
@click.option("--results", "show_results", is_flag=True, help="print the results table")
@json_option
@handle_errors
def show(sweep_id: str, show_results: bool, as_json: bool) -> None:
    """A sweep's progress by status, and with --results its table of params and metrics."""
    with get_client() as client:
        info = client.get_sweep(sweep_id)
        table = client.sweep_results(sweep_id) if show_results else None
    if as_json:
        echo_json(
            {
                "sweep": info.model_dump(mode="json"),
                "results": table.model_dump(mode="json") if table else None,
            }
        )
        return
    click.echo(
        f"sweep {info.id}  {info.script}@{info.script_version}  {info.total} jobs  "
        f"({info.counts_text}){'  finished' if info.finished else ''}"
    )
    if table:
        cols = ["job_id", "status", *table.param_columns, *table.metric_columns]
        echo_table([[_fmt(r.get(c)) for c in cols] for r in table.rows], cols)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
