"""The `hq` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import click


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hq")
def main() -> None:
    """HQ: run Python analysis scripts as container jobs on your own Docker hosts.

    Every command reads HQ_URL and HQ_TOKEN.
    """


def _register() -> None:
    from hq.cli import (
        agent,
        dash,
        datasets,
        images,
        jobs,
        results,
        scripts,
        server,
        standalone,
        sweeps,
        tokens,
    )

    for command in (
        server.server,
        tokens.token,
        jobs.job,
        sweeps.sweep,
        results.results,
        images.base_image,
        scripts.script,
        datasets.dataset,
        dash.dash,
        agent.agent,
        standalone.standalone,
    ):
        main.add_command(command)


_register()
