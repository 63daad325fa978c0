"""`hq results export`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from hq.cli.common import get_client, handle_errors

# The most rows GET /api/v1/results returns in one answer.
MAX_ROWS = 100_000


@click.group()
def results() -> None:
    """The flat table of params and metrics of a script's jobs."""


@results.command("export")
@click.option("--script", required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--status", default="succeeded", help="comma-separated; '' for all")
@click.option(
    "--limit",
    type=click.IntRange(1, MAX_ROWS),
    default=MAX_ROWS,
    show_default=True,
    help="at most this many rows (oldest first)",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@handle_errors
def export(script: str, fmt: str, status: str, limit: int, output: Path | None) -> None:
    with get_client() as client:
        if fmt == "csv":
            text = client.results_csv(script=script, status=status or None, limit=limit)
            rows = len(list(csv.reader(io.StringIO(text)))) - 1
        else:
            table = client.results(script=script, status=status or None, limit=limit)
            rows = len(table.rows)
            text = table.model_dump_json(indent=2) + "\n"
    if rows >= limit:  # the server stops at the limit: say so rather than cut the table silently
        click.echo(
            f"warning: the table stops at {limit} rows; there may be more "
            "(narrow it with --status, or raise --limit)",
            err=True,
        )
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output} ({rows} rows)", err=True)
