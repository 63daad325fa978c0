"""The `hq` command. Each command group lives in its own module and is registered here."""

from __future__ import annotations

import importlib

import click

# Each command group's module, imported only when that command runs (or for --help): `hq job
# list` need not import Docker, the Dash app and the image builder first.
COMMANDS = {
    "server": "hq.cli.server:server",
    "token": "hq.cli.tokens:token",
    "job": "hq.cli.jobs:job",
    "sweep": "hq.cli.sweeps:sweep",
    "pipeline": "hq.cli.pipelines:pipeline",
    "results": "hq.cli.results:results",
    "base-image": "hq.cli.images:base_image",
    "script": "hq.cli.scripts:script",
    "dataset": "hq.cli.datasets:dataset",
    "dash": "hq.cli.dash:dash",
    "agent": "hq.cli.agent:agent",
    "standalone": "hq.cli.standalone:standalone",
    "db": "hq.cli.db:db",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported when asked for, from ``COMMANDS``."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module_name), attr)
        assert isinstance(command, click.Command)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="hq")
def main() -> None:
    """HQ: run Python analysis scripts as container jobs on your own Docker hosts.

    Every command reads HQ_URL and HQ_TOKEN.
    """
