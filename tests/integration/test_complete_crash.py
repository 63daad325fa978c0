"""A ``complete`` that dies between its two transactions leaves nothing half-written.

``complete`` reads the lease in one transaction, checks and keeps the artifacts in storage with
none open, then accepts in a second. Here the second never opens: the app's sessionmaker raises
when ``complete`` asks for it (as a process killed at that point would stop). The job must still
be running with no artifact or result rows, the store must hold no staging object and the blob
(if written) whole under its own hash; the agent's retried complete then succeeds. On both
databases, on the folder store and on a real S3 server (moto).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.schemas.common import JobStatus
from hq.server import queue
from hq.server.db.models import Artifact, Job, JobResultRow
from hq.server.storage import ObjectStore, artifact_key, blob_key
from hq.server.storage.local import LocalStore
from hq.server.storage.s3 import S3Store
from tests.fixtures.factories import build_agent, build_job
from tests.fixtures.inprocess import InProcess
from tests.fixtures.s3 import S3Bucket

DATA = b"the result of a long run\n" * 4000


class KilledBetweenTransactions(RuntimeError):
    pass


class FailingSessionmaker:
    """The real sessionmaker, except that its ``fail_on``-th session raises instead."""

    def __init__(self, real: async_sessionmaker[AsyncSession], *, fail_on: int) -> None:
        self.real, self.fail_on, self.calls = real, fail_on, 0

    def __call__(self) -> AsyncSession:
        self.calls += 1
        if self.calls == self.fail_on:
            raise KilledBetweenTransactions("died before the accepting transaction")
        return self.real()


@pytest.fixture(params=["file", "s3"])
def store_and_names(
    request: pytest.FixtureRequest, tmp_path: Path
) -> tuple[ObjectStore, Callable[[], list[str]]]:
    """A real store and a way to list every object it holds, read around HQ."""
    if request.param == "file":
        root = tmp_path / "store"
        local = LocalStore(root=root, public_url="http://hq", secret_key="k" * 32)
        return local, lambda: sorted(
            str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()
        )
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    s3 = S3Store(
        bucket=bucket.bucket,
        endpoint=bucket.endpoint,
        access_key=bucket.server.access_key,
        secret_key=bucket.server.secret_key,
    )
    return s3, lambda: sorted(bucket.object_names())


async def _count(session: AsyncSession, model: Any, job_id: str) -> int:
    return int(await session.scalar(select(func.count()).where(model.job_id == job_id)) or 0)


async def leased_with_upload(
    inprocess: InProcess, store: ObjectStore, tmp_path: Path
) -> tuple[Job, str, dict[str, Any]]:
    """A job leased to an agent, behind HQ on ``store``, its artifact uploaded: the claimed job,
    the upload's key and the body of the complete that reports it."""
    inprocess.app.state.store = store
    async with inprocess.sessionmaker() as session, session.begin():
        agent = build_agent()
        job, _ = build_job()
        session.add_all([agent, job])
    async with inprocess.sessionmaker() as session, session.begin():
        [claimed] = await queue.claim_jobs(session, agent=agent, capacity=1, lease_ttl_seconds=60)
    source = tmp_path / "out.bin"
    source.write_bytes(DATA)
    upload = artifact_key(claimed.id, claimed.attempts, "out.bin")
    await store.put_file(upload, source)
    body: dict[str, Any] = {
        "lease_token": claimed.lease_token,
        "status": "succeeded",
        "exit_code": 0,
        "artifacts": [
            {"path": "out.bin", "size": len(DATA), "sha256": hashlib.sha256(DATA).hexdigest()}
        ],
    }
    return claimed, upload, body


async def test_a_complete_killed_between_its_transactions_leaves_nothing_half_written(
    inprocess: InProcess,
    store_and_names: tuple[ObjectStore, Callable[[], list[str]]],
    tmp_path: Path,
) -> None:
    store, names = store_and_names
    claimed, upload, body = await leased_with_upload(inprocess, store, tmp_path)
    body["results"] = {"metrics": {"r2": 0.9}}
    sha = body["artifacts"][0]["sha256"]
    url = f"/api/v1/jobs/{claimed.id}/complete"
    assert (await inprocess.http.get("/api/v1/tokens/me")).status_code == 200  # token cached
    real = inprocess.sessionmaker
    failing = FailingSessionmaker(real, fail_on=2)
    inprocess.app.state.sessionmaker = failing
    try:
        answer = await inprocess.http.post(url, json=body)
        assert answer.status_code == 500, answer.text
    except KilledBetweenTransactions:
        pass  # the transport re-raised the app's exception: the request died
    finally:
        inprocess.app.state.sessionmaker = real
    assert failing.calls == 2  # it died exactly where the second transaction would begin

    async with real() as session:
        row = await session.get(Job, claimed.id)
        assert row is not None
        assert (row.status, row.lease_token, row.finished_at) == (
            JobStatus.running.value,
            claimed.lease_token,
            None,
        )
        assert row.metrics == {}
        assert await _count(session, Artifact, claimed.id) == 0
        assert await _count(session, JobResultRow, claimed.id) == 0
    assert not [n for n in names() if n.startswith("staging/") or n.endswith(".part")]
    assert await store.sha256(upload) == sha  # the agent's upload is still there to retry
    assert await store.sha256(blob_key(sha)) == sha  # a blob is whole or absent

    retried = await inprocess.http.post(url, json=body)
    assert retried.status_code == 200, retried.text
    assert retried.json()["accepted"] is True
    listed = (await inprocess.http.get(f"/api/v1/jobs/{claimed.id}/artifacts")).json()
    assert [(a["path"], a["sha256"]) for a in listed] == [("out.bin", sha)]
    assert names() == [blob_key(sha)]  # the upload object went once the result was accepted
    again = await inprocess.http.post(url, json=body)  # the same token: the first answer
    assert again.status_code == 200 and again.json()["accepted"] is True


class CopyHeldOnce(LocalStore):
    """The folder store, except that the first copy out of an upload key waits at a gate."""

    def __init__(self, *, root: Path) -> None:
        super().__init__(root=root, public_url="http://hq", secret_key="k" * 32)
        self.copying, self.gate, self.held = asyncio.Event(), asyncio.Event(), False

    async def copy(self, src: str, dst: str) -> None:
        if src.startswith("artifacts/") and not self.held:
            self.held = True
            self.copying.set()
            await self.gate.wait()
        await super().copy(src, dst)


async def test_a_duplicate_complete_racing_the_first_gets_the_first_answer(
    inprocess: InProcess, tmp_path: Path
) -> None:
    """The first complete accepts and removes the upload while a duplicate (the same lease
    token, as an agent retrying after a timeout sends) is still checking it: the duplicate
    must get the first answer, not "not uploaded"."""
    store = CopyHeldOnce(root=tmp_path / "store")
    claimed, _, body = await leased_with_upload(inprocess, store, tmp_path)
    url = f"/api/v1/jobs/{claimed.id}/complete"
    duplicate = asyncio.create_task(inprocess.http.post(url, json=body))
    await asyncio.wait_for(store.copying.wait(), 5)
    try:
        first = await inprocess.http.post(url, json=body)
        assert first.status_code == 200, first.text
    finally:
        store.gate.set()
    late = await duplicate
    assert late.status_code == 200, late.text
    assert late.json() == first.json()
