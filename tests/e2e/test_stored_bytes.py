"""Accepted bytes stay what HQ checked, on the folder store and on a real S3 server (moto).

An upload URL stays valid for its 15 minutes after ``complete`` accepted the artifact. A PUT to it
then must change nothing a download or a promotion reads, nor what a later upload dedupes onto.
And a download through the client checks sha256: bytes changed in the store around HQ are an
error that leaves no file behind.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import httpx
import pytest

from hq import errors
from hq.schemas.agents import ArtifactFile
from tests.e2e.test_api_cli import hq
from tests.e2e.test_artifacts import complete, start_job
from tests.e2e.test_datasets import make_server, server, stored_objects  # noqa: F401
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.server import LiveServer

ORIGINAL = b"x,y\n1,2\n3,4\n"
REPLACED = b"x,y\n9,9\n9,9\n"  # the same size: only the hash tells them apart


def _file(data: bytes, path: str = "fit.csv") -> ArtifactFile:
    return ArtifactFile(path=path, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def _overwrite_object(live: LiveServer, key: str, data: bytes) -> None:
    """Change an object in the store around HQ (as a broken disk or an S3 admin could)."""
    bucket: S3Bucket | None = getattr(live, "bucket", None)
    if bucket is None:
        (live.home / "storage" / key).write_bytes(data)
        return
    import io

    bucket.client().put_object(bucket.bucket, key, io.BytesIO(data), len(data))


def test_a_put_after_acceptance_changes_nothing_hq_serves(
    server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = start_job(server)
    listed = [_file(ORIGINAL)]
    [slot] = run.agent.artifact_uploads(
        run.job_id, lease_token=run.lease.lease_token, files=listed
    ).uploads
    assert httpx.put(slot.url, content=ORIGINAL).status_code == 200
    complete(run, listed)

    # The URL is still within its 15 minutes: the store may take the PUT, HQ must not serve it.
    assert httpx.put(slot.url, content=REPLACED).status_code == 200
    submitter = server.client("submitter")
    [artifact] = submitter.list_artifacts(run.job_id)
    assert artifact.sha256 == listed[0].sha256
    assert httpx.get(submitter.artifact_url(run.job_id, "fit.csv")).content == ORIGINAL
    got = submitter.download_artifact(run.job_id, "fit.csv", tmp_path / "got.csv")
    assert got.read_bytes() == ORIGINAL

    promoted = submitter.promote_artifact(job_id=run.job_id, path="fit.csv", dataset="fit")
    assert promoted.sha256 == listed[0].sha256 and promoted.rows == 2
    back = submitter.download_dataset("fit", promoted.version, tmp_path / "fit.csv")
    assert back.read_bytes() == ORIGINAL
    # A genuine upload of the original bytes dedupes onto the original bytes.
    source = tmp_path / "original.csv"
    source.write_bytes(ORIGINAL)
    again = submitter.upload_dataset(name="fit-again", path=source)
    assert again.sha256 == promoted.sha256
    assert httpx.get(submitter.dataset_download_url("fit-again", 1)).content == ORIGINAL
    assert stored_objects(server, "staging/") == []


def test_downloads_check_sha256_and_keep_nothing_on_a_mismatch(
    server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    run = start_job(server)
    listed = [_file(ORIGINAL)]
    [slot] = run.agent.artifact_uploads(
        run.job_id, lease_token=run.lease.lease_token, files=listed
    ).uploads
    run.agent.upload_url(slot.url, _write(tmp_path / "up.csv", ORIGINAL))
    complete(run, listed)
    submitter = server.client("submitter")
    version = submitter.upload_dataset(name="table", path=_write(tmp_path / "table.csv", ORIGINAL))

    for key in stored_objects(server, "blobs/") + stored_objects(server, "artifacts/"):
        _overwrite_object(server, key, REPLACED)
    _overwrite_object(server, f"datasets/sha256/{version.sha256}", REPLACED)

    dest = tmp_path / "out"
    dest.mkdir()
    with pytest.raises(errors.IntegrityError, match="but HQ recorded"):
        submitter.download_artifact(run.job_id, "fit.csv", dest / "fit.csv")
    with pytest.raises(errors.IntegrityError, match="but HQ recorded"):
        submitter.download_dataset("table", version.version, dest / "table.csv")
    cli = hq(server, server.token("viewer"), "dataset", "download", "table", "-o", str(dest))
    assert cli.returncode == 1 and "but HQ recorded" in cli.stderr
    cli = hq(server, server.token("viewer"), "job", "artifacts", run.job_id, "-o", str(dest))
    assert cli.returncode == 1 and "but HQ recorded" in cli.stderr
    assert list(dest.rglob("*")) == []


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path
