"""`hq base-image`: the Python base image from Debian packages, for hosts with no Docker Hub."""

from __future__ import annotations

import click

from hq import imaging
from hq.cli.common import echo_json, handle_errors, json_option


def echo_progress(line: str) -> None:
    """Progress goes to stderr, so stdout keeps only the result (scripts can capture it)."""
    click.echo(line, err=True)


@click.group("base-image")
def base_image() -> None:
    """The offline Python base image (debootstrap; needs root)."""


@base_image.command("build")
@click.option("--tag", default=imaging.DEFAULT_BASE_TAG, show_default=True, help="local tag")
@click.option("--suite", default=imaging.DEFAULT_SUITE, show_default=True, help="Debian suite")
@click.option(
    "--mirror",
    default=imaging.DEFAULT_MIRROR,
    show_default=True,
    envvar="HQ_DEBIAN_MIRROR",
    help="Debian mirror (env HQ_DEBIAN_MIRROR)",
)
@click.option("--force", is_flag=True, help="rebuild even if the tag exists")
@click.option("--quiet", "-q", is_flag=True, help="no progress output")
@json_option
@handle_errors
def build(tag: str, suite: str, mirror: str, force: bool, quiet: bool, as_json: bool) -> None:
    """Build python3 + venv + CA certificates + user hq (1000:1000) from Debian packages.

    An image already tagged TAG is reused unless --force.
    """
    client = imaging.get_docker_client()
    image, built = imaging.build_base_image(
        client=client,
        tag=tag,
        suite=suite,
        mirror=mirror,
        force=force,
        on_line=(lambda _: None) if quiet else echo_progress,
    )
    if as_json:
        echo_json({"tag": tag, "image_id": image.id, "built": built})
    else:
        click.echo(f"{tag} {image.id} ({'built' if built else 'reused'})")
