"""`hq dataset upload|list|show|download|lineage|promote`."""

from __future__ import annotations

import sys
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, cast

import click

from hq import errors
from hq.cli.common import (
    CREATED,
    echo_json,
    echo_table,
    get_client,
    handle_errors,
    json_option,
    when,
)
from hq.client import HQClient
from hq.schemas.common import is_number
from hq.schemas.datasets import DatasetVersionRead


class _ProgressReader:
    """A file wrapper that advances a click progress bar as httpx reads it."""

    def __init__(self, fh: BinaryIO, bar: Any) -> None:
        self._fh = fh
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        chunk = self._fh.read(size)
        self._bar.update(len(chunk))
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._fh.seek(offset, whence)

    def tell(self) -> int:
        return self._fh.tell()

    def fileno(self) -> int:
        return self._fh.fileno()

    def __enter__(self) -> _ProgressReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._fh.close()


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME@VERSION``."""
    name, sep, version = ref.partition("@")
    if not sep or version == "latest":
        return name, None
    if not is_number(version):
        raise click.BadParameter(
            f"{ref!r}: the version after '@' must be a number", param_hint="DATASET"
        )
    return name, int(version)


def _resolve_version(client: HQClient, ref: str) -> tuple[str, int]:
    name, version = parse_ref(ref)
    if version is None:
        latest = client.get_dataset(name).latest_version
        if latest is None:
            raise errors.NotFound(f"dataset {name!r} has no versions yet")
        version = latest
    return name, version


def _summary(v: DatasetVersionRead) -> str:
    shape = (
        f"  {v.rows} rows x {len(v.columns)} columns" if v.rows is not None and v.columns else ""
    )
    return f"{v.dataset}@{v.version}  {v.size} bytes  sha256 {v.sha256}{shape}"


@click.group()
def dataset() -> None:
    """Upload, inspect and download datasets (immutable, content-addressed versions)."""


@dataset.command("upload")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--filename", default=None, help="the name to store (default: FILE's name)")
@json_option
@handle_errors
def upload(name: str, file: Path, filename: str | None, as_json: bool) -> None:
    """Upload FILE as the next version of dataset NAME (same bytes as the latest: no new one)."""
    size = file.stat().st_size
    bar: Any = click.progressbar(
        length=size, label=f"uploading {file.name}", file=sys.stderr, show_percent=True
    )
    with get_client() as client, bar, _ProgressReader(file.open("rb"), bar) as reader:
        created = client.upload_dataset_stream(
            name=name, stream=cast(BinaryIO, reader), filename=filename or file.name
        )
    if as_json:
        echo_json(created)
    else:
        click.echo(_summary(created))


@dataset.command("list")
@json_option
@handle_errors
def list_datasets(as_json: bool) -> None:
    """All datasets with their latest version."""
    with get_client() as client:
        rows = client.list_datasets()
    if as_json:
        echo_json(rows)
        return
    echo_table(
        [(d.name, d.latest_version, when(d.created_at)) for d in rows],
        ["name", "latest", CREATED],
    )


@dataset.command("show")
@click.argument("ref", metavar="DATASET[@VERSION]")
@json_option
@handle_errors
def show(ref: str, as_json: bool) -> None:
    """A dataset's versions, or one version's description and first rows."""
    name, version = parse_ref(ref)
    with get_client() as client:
        if version is None:
            found = client.get_dataset(name)
            if as_json:
                echo_json(found)
                return
            echo_table(
                [
                    (
                        v.version,
                        v.filename,
                        v.size,
                        v.rows,
                        v.sha256[:12],
                        v.produced_by_job or "",
                        when(v.created_at),
                    )
                    for v in found.versions
                ],
                ["version", "file", "bytes", "rows", "sha256", "from job", CREATED],
            )
            return
        one = client.get_dataset_version(name, version)
        lineage = client.dataset_lineage(name, version)
    if as_json:
        echo_json({**one.model_dump(mode="json"), "lineage": lineage.model_dump(mode="json")})
        return
    click.echo(_summary(one))
    click.echo(f"file {one.filename} ({one.content_type}), created {when(one.created_at)} UTC")
    if lineage.produced_by_job:
        click.echo(f"written by job {lineage.produced_by_job}")
    click.echo(f"read by {len(lineage.read_by_jobs)} job(s)")
    if one.columns and one.preview:
        click.echo("")
        echo_table([[row.get(c) for c in one.columns] for row in one.preview], one.columns)


@dataset.command("lineage")
@click.argument("ref", metavar="DATASET[@VERSION]")
@json_option
@handle_errors
def lineage(ref: str, as_json: bool) -> None:
    """Which job wrote a version and which jobs read it."""
    with get_client() as client:
        name, version = _resolve_version(client, ref)
        found = client.dataset_lineage(name, version)
    if as_json:
        echo_json(found)
        return
    click.echo(f"{name}@{version} written by: {found.produced_by_job or '(uploaded)'}")
    for job_id in found.read_by_jobs:
        click.echo(f"read by {job_id}")


@dataset.command("download")
@click.argument("ref", metavar="DATASET[@VERSION]")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="file or folder to write (default: the stored filename, here)",
)
@handle_errors
def download(ref: str, output: Path | None) -> None:
    """Download a version (the latest if none is given) through a presigned URL."""
    with get_client() as client:
        name, version = _resolve_version(client, ref)
        found = client.get_dataset_version(name, version)
        dest = output or Path(found.filename)
        if dest.is_dir():
            dest = dest / found.filename
        click.echo(f"downloading {name}@{version} ({found.size} bytes) to {dest}", err=True)
        client.download_dataset(name, version, dest, sha256=found.sha256)
    click.echo(str(dest))


@dataset.command("promote")
@click.argument("job_id", metavar="JOB")
@click.argument("path")
@click.argument("name")
@json_option
@handle_errors
def promote(job_id: str, path: str, name: str, as_json: bool) -> None:
    """Make artifact PATH of JOB the next version of dataset NAME."""
    with get_client() as client:
        created = client.promote_artifact(job_id=job_id, path=path, dataset=name)
    if as_json:
        echo_json(created)
    else:
        click.echo(_summary(created))
