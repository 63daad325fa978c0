"""Artifacts through a live HQ server, on the folder store and on a real S3 server (moto).

The test plays the agent over HTTP (register, claim, upload to presigned URLs, complete), so
HQ's checks on what an agent claims to have uploaded are exercised without a container.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pandas as pd
import pytest

from hq import errors
from hq.client import HQClient
from hq.schemas.agents import (
    INLINE_ARTIFACT_BYTES,
    AgentCreate,
    ArtifactFile,
    CompleteRequest,
    Lease,
    ReportedArtifact,
)
from hq.schemas.common import JobStatus
from tests.e2e.test_api_cli import hq, ok
from tests.e2e.test_datasets import STORES, expiry_seconds, stored_objects
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.server import LiveServer, ServerFactory


@pytest.fixture(params=STORES)
def server(request: pytest.FixtureRequest, server_factory: ServerFactory) -> LiveServer:
    if request.param == "file":
        return server_factory()
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    live = server_factory(
        storage_url=bucket.storage_url,
        env={
            "HQ_S3_ACCESS_KEY": bucket.server.access_key,
            "HQ_S3_SECRET_KEY": bucket.server.secret_key,
        },
    )
    live.bucket = bucket  # type: ignore[attr-defined]
    return live


@dataclass
class Running:
    """A job claimed by a test-driven agent."""

    agent: HQClient
    lease: Lease

    @property
    def job_id(self) -> str:
        return self.lease.job_id


def describe(path: Path, name: str) -> ArtifactFile:
    data = path.read_bytes()
    return ArtifactFile(path=name, size=len(data), sha256=hashlib.sha256(data).hexdigest())


def start_job(server: LiveServer, *, script: str = "maker") -> Running:
    admin = server.client("admin")
    admin.publish_script_version(
        name=script,
        image=f"127.0.0.1:5000/{script}:1",
        digest="sha256:" + "b" * 64,
        manifest={"name": script, "command": ["python", "make.py"]},
    )
    job = server.client("submitter").submit_job(script=script)
    agent = server.client("agent")
    registered = agent.register_agent(AgentCreate(name="test-agent"))
    leases = agent.claim(registered.id, capacity=1, wait_s=5).leases
    assert [lease.job_id for lease in leases] == [job.id]
    return Running(agent=agent, lease=leases[0])


def upload(run: Running, files: dict[str, Path]) -> list[ArtifactFile]:
    listed = [describe(path, name) for name, path in files.items()]
    response = run.agent.artifact_uploads(
        run.job_id, lease_token=run.lease.lease_token, files=listed
    )
    assert [u.path for u in response.uploads] == list(files)
    for item in response.uploads:
        assert 0 < expiry_seconds(item.url) <= 900
        run.agent.upload_url(item.url, files[item.path])
    return listed


def complete(run: Running, artifacts: list[ArtifactFile] | list[ReportedArtifact]) -> None:
    run.agent.complete(
        run.job_id,
        CompleteRequest(
            lease_token=run.lease.lease_token,
            status=JobStatus.succeeded,
            exit_code=0,
            artifacts=artifacts,
        ),
    )


def test_uploaded_artifacts_are_verified_listed_and_downloadable(
    server: LiveServer, tmp_path: Path
) -> None:
    run = start_job(server)
    table = tmp_path / "table.csv"
    pd.DataFrame({"k": [1, 2, 3], "v": [0.1, 0.2, 0.3]}).to_csv(table, index=False)
    blob = tmp_path / "model.bin"
    blob.write_bytes(os.urandom(3 * 1024 * 1024 + 5))
    listed = upload(run, {"out/table.csv": table, "model.bin": blob})
    complete(run, listed)

    viewer = server.client("viewer")
    assert viewer.get_job(run.job_id).status == JobStatus.succeeded
    artifacts = viewer.list_artifacts(run.job_id)
    assert sorted((a.path, a.size, a.sha256, a.attempt) for a in artifacts) == sorted(
        (f.path, f.size, f.sha256, run.lease.attempt) for f in listed
    )
    url = viewer.artifact_url(run.job_id, "model.bin")
    assert 0 < expiry_seconds(url) <= 900
    assert (
        viewer.download_artifact(run.job_id, "out/table.csv", tmp_path / "back.csv").read_bytes()
        == table.read_bytes()
    )
    assert httpx.get(url).content == blob.read_bytes()
    with pytest.raises(errors.NotFound, match="no artifact"):
        viewer.artifact_url(run.job_id, "nothere.txt")


def test_small_artifacts_come_inline_with_complete_checked_and_need_no_upload(
    server: LiveServer, tmp_path: Path
) -> None:
    """A small file's bytes may come inside ``complete`` (base64): HQ checks them against the
    listed size and sha256 and stores them as the blob, with no upload; a large one of the same
    result still goes through its upload URL. A wrong claim or too much inline is refused,
    naming what to fix, and stores nothing."""
    run = start_job(server)
    small = ReportedArtifact.inline(path="out/fit.csv", content=b"x,y\n1,2\n")
    blob = tmp_path / "model.bin"
    blob.write_bytes(os.urandom(INLINE_ARTIFACT_BYTES + 1))
    uploaded = upload(run, {"model.bin": blob})

    forged = small.model_copy(update={"sha256": hashlib.sha256(b"other").hexdigest()})
    with pytest.raises(errors.ValidationFailed, match=r"'out/fit\.csv' came with bytes of sha256"):
        complete(run, [forged, *uploaded])
    resized = small.model_copy(update={"size": small.size + 1})
    with pytest.raises(errors.ValidationFailed, match="came with 8 bytes but was declared as 9"):
        complete(run, [resized])
    many = [
        ReportedArtifact.inline(path=f"part{i}.bin", content=os.urandom(INLINE_ARTIFACT_BYTES))
        for i in range(5)
    ]
    with pytest.raises(errors.PayloadTooLarge, match="came inline, over the 262144"):
        complete(run, many)
    with pytest.raises(errors.ValidationFailed, match="not valid base64"):
        run.agent.complete(
            run.job_id,
            CompleteRequest.model_construct(
                lease_token=run.lease.lease_token,
                status=JobStatus.succeeded,
                artifacts=[small.model_copy(update={"data": "abc"})],
            ),
        )
    viewer = server.client("viewer")
    assert viewer.get_job(run.job_id).status == JobStatus.running
    assert stored_objects(server, "blobs/") == []

    complete(run, [small, *uploaded])
    assert viewer.get_job(run.job_id).status == JobStatus.succeeded
    assert sorted((a.path, a.size, a.sha256) for a in viewer.list_artifacts(run.job_id)) == [
        ("model.bin", blob.stat().st_size, uploaded[0].sha256),
        ("out/fit.csv", small.size, small.sha256),
    ]
    got = viewer.download_artifact(run.job_id, "out/fit.csv", tmp_path / "fit.csv")
    assert got.read_bytes() == b"x,y\n1,2\n"
    assert httpx.get(viewer.artifact_url(run.job_id, "model.bin")).content == blob.read_bytes()
    assert stored_objects(server, "artifacts/") == []  # the upload is gone; the inline had none
    assert len(stored_objects(server, "blobs/")) == 2


def test_the_cli_lists_artifacts_and_downloads_them_verified(
    server: LiveServer, tmp_path: Path
) -> None:
    run = start_job(server)
    (tmp_path / "fit.csv").write_text("x,y\n1,2\n")
    (tmp_path / "fig.json").write_bytes(b'{"data": []}')
    complete(
        run, upload(run, {"fit.csv": tmp_path / "fit.csv", "plots/fig.json": tmp_path / "fig.json"})
    )
    token = server.token("viewer")
    listed = ok(hq(server, token, "job", "artifacts", run.job_id)).splitlines()
    assert listed[0].split() == ["path", "size", "sha256"]
    assert [line.split()[0] for line in listed[2:]] == ["fit.csv", "plots/fig.json"]
    out = tmp_path / "got"
    fetched = hq(server, token, "job", "artifacts", run.job_id, "-o", str(out))
    assert fetched.returncode == 0, fetched.stderr
    assert (out / "fit.csv").read_text() == "x,y\n1,2\n"
    assert (out / "plots" / "fig.json").read_bytes() == b'{"data": []}'
    assert "wrote 2 artifacts" in fetched.stderr
    one = hq(
        server, token, "job", "artifacts", run.job_id, "plots/fig.json", "-o", str(tmp_path / "one")
    )
    assert one.returncode == 0, one.stderr
    assert [p.name for p in (tmp_path / "one").rglob("*") if p.is_file()] == ["fig.json"]
    missing = hq(server, token, "job", "artifacts", run.job_id, "nope.txt", "-o", str(out))
    assert missing.returncode == 1 and "no artifact 'nope.txt'" in missing.stderr


def test_a_missing_artifact_is_refused_and_the_job_stays_running(
    server: LiveServer, tmp_path: Path
) -> None:
    run = start_job(server)
    present = tmp_path / "a.txt"
    present.write_text("here")
    listed = upload(run, {"a.txt": present})
    ghost = ArtifactFile(path="b.txt", size=4, sha256=hashlib.sha256(b"gone").hexdigest())
    with pytest.raises(errors.ValidationFailed, match=r"'b\.txt' was not uploaded"):
        complete(run, [*listed, ghost])
    assert server.client("viewer").get_job(run.job_id).status == JobStatus.running
    assert server.client("viewer").list_artifacts(run.job_id) == []
    complete(run, listed)  # the honest claim is then accepted
    assert [a.path for a in server.client("viewer").list_artifacts(run.job_id)] == ["a.txt"]


def test_an_artifact_with_other_content_is_refused(server: LiveServer, tmp_path: Path) -> None:
    run = start_job(server)
    real = tmp_path / "r.txt"
    real.write_bytes(b"real content")
    listed = upload(run, {"r.txt": real})
    forged = ArtifactFile(
        path="r.txt", size=listed[0].size, sha256=hashlib.sha256(b"other bytes!").hexdigest()
    )
    with pytest.raises(
        errors.ValidationFailed,
        match=r"'r\.txt' has sha256 [0-9a-f]{64} in storage but was declared",
    ):
        complete(run, [forged])
    resized = ArtifactFile(path="r.txt", size=listed[0].size + 1, sha256=listed[0].sha256)
    with pytest.raises(errors.ValidationFailed, match="bytes in storage but declared as"):
        complete(run, [resized])
    assert server.client("viewer").get_job(run.job_id).status == JobStatus.running


TRAVERSAL_NAMES = [
    "../escape.txt",
    "/etc/passwd",
    "a/../../b",
    "a\\b.txt",
    "%2e%2e/x",
    "a/%2F/b",
    "./a",
    "a//b",
    "\uff0e\uff0e/x",
    "tab\there",
]


def test_traversal_artifact_names_are_refused(server: LiveServer) -> None:
    run = start_job(server)
    for name in TRAVERSAL_NAMES:
        bad = ArtifactFile(path=name, size=1, sha256="0" * 64)
        with pytest.raises(errors.ValidationFailed, match="artifact path"):
            run.agent.artifact_uploads(run.job_id, lease_token=run.lease.lease_token, files=[bad])
        with pytest.raises(errors.ValidationFailed, match="artifact path"):
            complete(run, [bad])
    assert stored_objects(server, "artifacts/") == []
    assert server.client("viewer").get_job(run.job_id).status == JobStatus.running


def test_artifact_download_paths_cannot_escape(server: LiveServer, tmp_path: Path) -> None:
    run = start_job(server)
    f = tmp_path / "ok.txt"
    f.write_text("ok")
    complete(run, upload(run, {"ok.txt": f}))
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.admin_token}"}
    ) as http:
        for raw in (
            f"/api/v1/jobs/{run.job_id}/artifacts/%2e%2e/%2e%2e/ok.txt",
            f"/api/v1/jobs/{run.job_id}/artifacts/..%5Cok.txt",
            f"/api/v1/jobs/{run.job_id}/artifacts/%252e%252e/ok.txt",
        ):
            request = http.build_request("GET", "/")
            request.url = request.url.copy_with(raw_path=raw.encode())
            response = http.send(request)
            assert response.status_code in (404, 422), raw
            assert "location" not in response.headers


def test_upload_urls_need_the_current_lease(server: LiveServer, tmp_path: Path) -> None:
    run = start_job(server)
    files = [ArtifactFile(path="x.txt", size=1, sha256="0" * 64)]
    with pytest.raises(errors.LeaseLost):
        run.agent.artifact_uploads(run.job_id, lease_token="not-the-token", files=files)
    with pytest.raises(errors.Forbidden):
        server.client("submitter").artifact_uploads(
            run.job_id, lease_token=run.lease.lease_token, files=files
        )
    other_agent = server.client("agent", name="intruder")
    with pytest.raises(errors.Forbidden, match="another agent"):
        other_agent.artifact_uploads(run.job_id, lease_token=run.lease.lease_token, files=files)
    response = run.agent.artifact_uploads(
        run.job_id, lease_token=run.lease.lease_token, files=files
    )
    key = urlsplit(response.uploads[0].url).path
    assert f"/artifacts/{run.job_id}/{run.lease.attempt}/x.txt" in key  # scoped to the attempt


def test_a_promoted_artifact_becomes_a_dataset_version_with_lineage(
    server: LiveServer, tmp_path: Path
) -> None:
    run = start_job(server)
    table = tmp_path / "residuals.csv"
    pd.DataFrame({"fitted": [1.0, 2.0], "residual": [0.1, -0.1]}).to_csv(table, index=False)
    complete(run, upload(run, {"out/residuals.csv": table}))
    submitter = server.client("submitter")
    version = submitter.promote_artifact(
        job_id=run.job_id, path="out/residuals.csv", dataset="residuals"
    )
    assert (version.dataset, version.version, version.produced_by_job) == (
        "residuals",
        1,
        run.job_id,
    )
    assert version.rows == 2 and version.columns == ["fitted", "residual"]
    assert version.filename == "residuals.csv"
    assert version.sha256 == hashlib.sha256(table.read_bytes()).hexdigest()
    lineage = submitter.dataset_lineage("residuals", 1)
    assert lineage.produced_by_job == run.job_id and lineage.read_by_jobs == []
    got = submitter.download_dataset("residuals", 1, tmp_path / "got.csv")
    assert got.read_bytes() == table.read_bytes()
    assert stored_objects(server) == [f"datasets/sha256/{version.sha256}"]
    with pytest.raises(errors.NotFound, match=r"has no artifact 'nope\.csv'"):
        submitter.promote_artifact(job_id=run.job_id, path="nope.csv", dataset="residuals")
    with pytest.raises(errors.NotFound, match="not found"):
        submitter.promote_artifact(job_id="no-such-job", path="x.csv", dataset="residuals")


def test_a_folder_upload_url_refuses_a_changed_signature(
    server: LiveServer, tmp_path: Path
) -> None:
    run = start_job(server)
    files = [ArtifactFile(path="x.txt", size=2, sha256=hashlib.sha256(b"hi").hexdigest())]
    url = (
        run.agent.artifact_uploads(run.job_id, lease_token=run.lease.lease_token, files=files)
        .uploads[0]
        .url
    )
    query = parse_qs(urlsplit(url).query)
    if "sig" not in query:
        pytest.skip("moto does not check S3 signatures; the folder store's are tested")
    sig = query["sig"][0]
    forged = url.replace(sig, ("0" if sig[0] != "0" else "1") + sig[1:])
    assert httpx.put(forged, content=b"hi").status_code == 403
    elsewhere = url.replace("/x.txt?", "/y.txt?")
    assert httpx.put(elsewhere, content=b"hi").status_code == 403
    assert stored_objects(server, "artifacts/") == []
    assert httpx.put(url, content=b"hi").status_code == 200
    assert stored_objects(server, "artifacts/") == [f"artifacts/{run.job_id}/1/x.txt"]
