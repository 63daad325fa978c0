"""Storage unreachable while a job completes is HQ's problem, never the script's fault.

HQ's S3 store (moto on loopback) is reached through a ``Link`` the test cuts and restores, so
the object store keeps its objects while nobody can reach it. First the protocol as an agent
speaks it: a ``complete`` whose artifacts cannot be checked is answered 503 (try again), and
the job stays running on its lease, not failed; once storage is back the same complete is
accepted with its result. Then a real ``hq agent`` running a real container: its upload fails
while storage is away, it retries, and the job succeeds on its first attempt with its artifact.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from hq import errors
from hq.schemas.agents import AgentCreate, ArtifactFile, CompleteRequest
from hq.schemas.common import JobStatus
from hq.schemas.results import Results
from tests.fixtures.agent import AgentFactory, publish_inline, wait_status
from tests.fixtures.db import DB_KINDS
from tests.fixtures.docker import BaseImage
from tests.fixtures.link import Link
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.server import LiveServer, ServerFactory

ANSWER_WITHIN_S = 30.0  # HQ answers a complete it cannot check, rather than hang


@pytest.fixture
def link(s3_bucket: S3Bucket) -> Iterator[Link]:
    port = int(s3_bucket.endpoint.rsplit(":", 1)[1])
    with Link(port) as made:
        yield made


def start(server_factory: ServerFactory, bucket: S3Bucket, link: Link, db: str) -> LiveServer:
    query = urlencode({"endpoint": link.endpoint, "region": bucket.server.region})
    storage_url = f"s3://{bucket.bucket}?{query}"  # HQ and presigned URLs go through the link
    return server_factory(
        db=db,
        storage_url=storage_url,
        env={
            "HQ_S3_ACCESS_KEY": bucket.server.access_key,
            "HQ_S3_SECRET_KEY": bucket.server.secret_key,
        },
    )


@pytest.mark.parametrize("db", DB_KINDS)
def test_a_complete_hq_cannot_check_is_503_and_the_job_runs_on_until_storage_is_back(
    db: str, server_factory: ServerFactory, s3_bucket: S3Bucket, link: Link, tmp_path: Path
) -> None:
    server = start(server_factory, s3_bucket, link, db)
    admin = server.client("admin")
    admin.publish_script_version(
        name="maker",
        image="127.0.0.1:5000/maker:1",
        digest="sha256:" + "c" * 64,
        manifest={"name": "maker", "command": ["python", "make.py"]},
    )
    job = server.client("submitter").submit_job(script="maker", max_attempts=2)
    agent = server.client("agent")
    registered = agent.register_agent(AgentCreate(name="outage-agent"))
    [lease] = agent.claim(registered.id, capacity=1, wait_s=5).leases
    data = b"model weights\n" * 1000
    (tmp_path / "model.bin").write_bytes(data)
    listed = [
        ArtifactFile(path="model.bin", size=len(data), sha256=hashlib.sha256(data).hexdigest())
    ]
    [url] = agent.artifact_uploads(job.id, lease_token=lease.lease_token, files=listed).uploads
    agent.upload_url(url.url, tmp_path / "model.bin")
    request = CompleteRequest(
        lease_token=lease.lease_token,
        status=JobStatus.succeeded,
        exit_code=0,
        artifacts=listed,
        results=Results(metrics={"auc": 0.91}),
    )

    link.cut()
    asked = time.monotonic()
    with pytest.raises(errors.Unavailable) as refused:
        agent.complete(job.id, request)
    assert time.monotonic() - asked < ANSWER_WITHIN_S
    assert "S3" in refused.value.message and "unreachable" in refused.value.message
    during = admin.get_job(job.id)
    assert during.status == JobStatus.running and during.attempts == 1
    assert during.failure_kind is None and during.failure_reason is None
    assert [e.kind for e in during.events if e.kind in ("failed", "requeued")] == []
    assert not agent.heartbeat(job.id, lease_token=lease.lease_token).cancel_requested

    link.restore()
    answer = agent.complete(job.id, request)
    assert answer.accepted and answer.status == JobStatus.succeeded
    done = admin.get_job(job.id)
    assert done.status == JobStatus.succeeded and done.attempts == 1
    assert done.metrics == {"auc": 0.91}
    [stored] = admin.list_artifacts(job.id)
    assert (stored.path, stored.sha256) == ("model.bin", listed[0].sha256)
    admin.download_artifact(job.id, "model.bin", tmp_path / "back.bin", sha256=stored.sha256)
    assert (tmp_path / "back.bin").read_bytes() == data


WRITER = """
import json, pathlib, time
time.sleep(3)
pathlib.Path('/hq/outputs/report.txt').write_text('rows: 42\\n')
pathlib.Path('/hq/outputs/results.json').write_text(json.dumps({'metrics': {'rows': 42}}))
"""


def test_a_real_agent_retries_its_upload_until_storage_is_back_and_the_job_succeeds(
    server_factory: ServerFactory,
    s3_bucket: S3Bucket,
    link: Link,
    hq_agents: AgentFactory,
    base_image: BaseImage,
) -> None:
    server = start(server_factory, s3_bucket, link, "sqlite")
    agent = hq_agents(server, env={"HQ_RETRY_MAX_S": "1"})
    publish_inline(server, base_image, name="writer", code=WRITER)
    admin = server.client("admin")
    job = server.client("submitter").submit_job(script="writer", max_attempts=1)
    wait_status(admin, job.id, {"running"}, timeout_s=60)
    link.cut()  # before the script ends: its upload meets an unreachable store
    deadline = time.monotonic() + 60
    while "retrying" not in agent.log() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "retrying" in agent.log(), agent.log()[-3000:]
    time.sleep(3)  # a few more failed rounds
    assert admin.get_job(job.id).status == JobStatus.running  # not failed, not requeued
    link.restore()
    done = wait_status(admin, job.id, {"succeeded", "failed", "timed_out"}, timeout_s=60)
    assert done.status == JobStatus.succeeded and done.attempts == 1, done
    assert done.metrics is not None and done.metrics.get("rows") == 42
    paths = {a.path: a.sha256 for a in admin.list_artifacts(job.id)}
    assert paths["report.txt"] == hashlib.sha256(b"rows: 42\n").hexdigest()
