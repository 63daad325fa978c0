"""`hq results export`."""

from __future__ import annotations

from pathlib import Path

import click

from hq.cli.common import echo_json, get_client, handle_errors


@click.group()
def results() -> None:
    """The flat table of params and metrics of a script's jobs."""


@results.command("export")
@click.option("--script", required=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--status", default="succeeded", help="comma-separated; '' for all")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@handle_errors
def export(script: str, fmt: str, status: str, output: Path | None) -> None:
    with get_client() as client:
        if fmt == "csv":
            text = client.results_csv(script=script, status=status or None)
        else:
            table = client.results(script=script, status=status or None)
            if output is None:
                echo_json(table)
                return
            text = table.model_dump_json(indent=2)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        click.echo(f"wrote {output}", err=True)
