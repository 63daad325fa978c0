"""`hq script`: turn a script folder into an image, push it, publish it as a version, list them."""

from __future__ import annotations

from pathlib import Path

import click

from hq import imaging
from hq.cli.common import (
    CREATED,
    echo_json,
    echo_table,
    get_client,
    handle_errors,
    json_option,
    when,
)
from hq.cli.images import echo_progress
from hq.imaging.init import init_script
from hq.imaging.init_parser import PROBE_TIMEOUT_S


def _progress(quiet: bool) -> imaging.OnLine:
    return (lambda _: None) if quiet else echo_progress


base_option = click.option(
    "--base",
    default=imaging.DEFAULT_BASE_TAG,
    show_default=True,
    envvar="HQ_BASE_IMAGE",
    help="base image (env HQ_BASE_IMAGE); python:3.11-slim works where Docker Hub is reachable",
)
quiet_option = click.option("--quiet", "-q", is_flag=True, help="no progress output")


@click.group("script")
def script() -> None:
    """Script images: build, push, publish, list."""


@script.command("build")
@click.argument("script_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--tag", "ref", help="image reference (default hq/<name>:latest)")
@base_option
@click.option("--force", is_flag=True, help="rebuild even if an identical image exists")
@click.option("--check", is_flag=True, help="only validate hq.yaml (no Docker needed)")
@quiet_option
@json_option
@handle_errors
def build(
    script_dir: Path,
    ref: str | None,
    base: str,
    force: bool,
    check: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Validate SCRIPT_DIR/hq.yaml and build its image from images/script.Dockerfile.

    The manifest goes into the image's hq.manifest label. An image with the same tag and the same
    content hash (hq.context-sha256) is reused. With --check, validate only.
    """
    manifest = imaging.load_manifest(script_dir)  # fail on a bad manifest before touching Docker
    if check:
        if as_json:
            echo_json({"script": manifest.name, "valid": True})
        else:
            click.echo(f"{script_dir / imaging.MANIFEST_FILE}: valid manifest of {manifest.name}")
        return
    built = imaging.build_script_image(
        client=imaging.get_docker_client(),
        script_dir=script_dir,
        ref=ref,
        base_image=base,
        force=force,
        on_line=_progress(quiet),
    )
    if as_json:
        echo_json(
            {
                "ref": built.ref,
                "image_id": built.image_id,
                "reused": built.reused,
                "script": built.manifest.name,
                "context_sha256": built.context_sha256,
            }
        )
    else:
        click.echo(f"{built.ref} {built.image_id} ({'reused' if built.reused else 'built'})")


@script.command("init")
@click.argument("script_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--name", help="the script's name (default: its folder's name)")
@click.option(
    "--python",
    "python",
    help="the interpreter that has the script's packages (default: HQ's own)",
)
@click.option(
    "--timeout",
    "timeout_s",
    type=float,
    default=PROBE_TIMEOUT_S,
    show_default=True,
    help="seconds the script may run before it reaches parse_args",
)
@click.option("--force", is_flag=True, help="overwrite an existing hq.yaml / requirements.txt")
@json_option
@handle_errors
def init(
    script_path: Path,
    name: str | None,
    python: str | None,
    timeout_s: float,
    force: bool,
    as_json: bool,
) -> None:
    """Write a draft hq.yaml beside SCRIPT_PATH from the script's own argparse parser.

    The parser is read by running the script until it calls parse_args (nothing after that
    runs), or from its source when it cannot run. Also writes requirements.txt from its imports
    (unless one exists). Lines marked "HQ: confirm" are guesses (inputs, outputs) to check.
    """
    result = init_script(script_path, force=force, python=python, name=name, timeout_s=timeout_s)
    if as_json:
        echo_json(
            {
                "manifest": str(result.manifest_path),
                "requirements": str(result.requirements_path) if result.requirements_path else None,
                "read_by": result.parser.how,
                "why_not_run": result.parser.why_not_run,
                "not_mapped": result.notes,
                "problems": result.problems,
            }
        )
        return
    how = (
        "ran it up to parse_args"
        if result.parser.how == "run"
        else (f"read its source ({result.parser.why_not_run})")
    )
    click.echo(f"wrote {result.manifest_path} ({how})")
    if result.requirements_path is not None:
        click.echo(f"wrote {result.requirements_path}")
    for note in result.notes:
        click.echo(f"not mapped: {note}")
    if result.problems:
        click.echo(f"warning: the draft does not validate yet:\n{result.problems}", err=True)
    click.echo(
        f'check the lines marked "HQ: confirm", then: hq script build --check '
        f"{result.manifest_path.parent}"
    )


@script.command("push")
@click.argument("ref")
@click.option("--registry", help="HOST[:PORT] to push to (tags REF as HOST[:PORT]/REF first)")
@quiet_option
@json_option
@handle_errors
def push(ref: str, registry: str | None, quiet: bool, as_json: bool) -> None:
    """Push the image REF to a registry and print its digest reference."""
    client = imaging.get_docker_client()
    if registry:
        ref = imaging.retag_for_registry(client=client, ref=ref, registry=registry)
    digest = imaging.push_image(client=client, ref=ref, on_line=_progress(quiet))
    repo = ref.rsplit(":", 1)[0] if ":" in ref.rsplit("/", 1)[-1] else ref
    if as_json:
        echo_json({"ref": ref, "digest": digest, "pinned": f"{repo}@{digest}"})
    else:
        click.echo(f"{repo}@{digest}")


@script.command("publish")
@click.argument("image")
@base_option
@quiet_option
@json_option
@handle_errors
def publish(image: str, base: str, quiet: bool, as_json: bool) -> None:
    """Register IMAGE as a new version of its script (needs a publisher token in HQ_TOKEN).

    IMAGE is an image reference, or a script folder (built first, reusing an identical image).
    The manifest comes from the image's label. The digest is the registry's once pushed; an
    image that never left this host is pinned by its image ID (for `make run`, standalone).
    """
    client = imaging.get_docker_client()
    if Path(image).is_dir():
        image = imaging.build_script_image(
            client=client, script_dir=Path(image), base_image=base, on_line=_progress(quiet)
        ).ref
    found = imaging.find_image(client=client, ref=image)
    if found is None:
        found = imaging.pull_image(client=client, ref=image, on_line=_progress(quiet))
    manifest = imaging.manifest_from_image(found)
    digest = imaging.local_digest(client=client, ref=image)
    with get_client() as api:
        version = api.publish_script_version(
            name=manifest.name, image=image, digest=digest, manifest=manifest
        )
    if as_json:
        echo_json(version)
    else:
        click.echo(f"{version.script} v{version.version} {version.image_ref}")


@script.command("list")
@json_option
@handle_errors
def list_scripts(as_json: bool) -> None:
    """Scripts registered with HQ and their latest version."""
    with get_client() as api:
        scripts = api.list_scripts()
    if as_json:
        echo_json(scripts)
        return
    echo_table(
        [(s.name, s.latest_version, when(s.created_at), s.description) for s in scripts],
        ["name", "latest", CREATED, "description"],
    )
