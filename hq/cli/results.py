"""`hq results export`."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import click

from hq.cli.common import get_client, handle_errors
from hq.schemas.sweeps import ResultsTable


@click.group()
def results() -> None:
    """The flat table of params and metrics of a script's jobs."""


@results.command("export")
@click.option("--script", required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--status", default="succeeded", help="comma-separated; '' for all")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="at most this many rows, oldest first [default: every row]",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@handle_errors
def export(script: str, fmt: str, status: str, limit: int | None, output: Path | None) -> None:
    """Every job's params and metrics, one row per job, oldest first."""
    with get_client() as client:
        if fmt == "csv":  # one more row than asked tells whether the limit cut the table
            text = client.results_csv(
                script=script, status=status or None, limit=None if limit is None else limit + 1
            )
            records = list(csv.reader(io.StringIO(text)))
            rows, cut = len(records) - 1, limit is not None and len(records) - 1 > limit
            if cut:
                assert limit is not None
                rows, text = limit, _csv_text(records[: limit + 1])
        else:
            pages: list[ResultsTable] = []
            fetched = 0
            for page in client.iter_results(script=script, status=status or None):
                pages.append(page)
                fetched += len(page.rows)
                if limit is not None and fetched > limit:
                    break
            table = _merge(pages)
            cut = limit is not None and len(table.rows) > limit
            table.rows = table.rows[:limit]
            rows, text = len(table.rows), table.model_dump_json(indent=2) + "\n"
    if cut:
        click.echo(f"warning: the table stops at {limit} rows; there are more", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output} ({rows} rows)", err=True)


def _csv_text(records: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(records)
    return buffer.getvalue()


def _merge(pages: list[ResultsTable]) -> ResultsTable:
    """The pages of one table as one: their rows in order, the union of their columns."""
    params = sorted({c for p in pages for c in p.param_columns})
    metrics = sorted({c for p in pages for c in p.metric_columns})
    fixed = [c for c in pages[0].columns if c not in params and c not in metrics]
    return ResultsTable(
        columns=[*fixed, *params, *metrics],
        param_columns=params,
        metric_columns=metrics,
        rows=[row for p in pages for row in p.rows],
    )
