"""`complete` checks artifacts in storage with no database transaction open.

Hashing a large artifact takes seconds; done inside the transaction, it held the job's row lock
on PostgreSQL and the one write lock on SQLite, so every heartbeat (and on SQLite every write)
waited for it. The app runs in-process on both databases, with the real folder store, whose
``sha256`` waits at a gate the test opens.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from hq.server import queue
from hq.server.db.models import Job
from hq.server.storage import artifact_key
from hq.server.storage.local import LocalStore
from tests.fixtures.factories import build_agent, build_job
from tests.fixtures.inprocess import InProcess

PATIENCE_SECONDS = 5.0


class GatedStore(LocalStore):
    """The folder store, except that hashing waits until the test opens the gate."""

    def __init__(self, *, root: Path) -> None:
        super().__init__(root=root, public_url="http://hq", secret_key="k" * 32)
        self.hashing = asyncio.Event()
        self.gate = asyncio.Event()

    async def sha256(self, key: str) -> str:
        self.hashing.set()
        await self.gate.wait()
        return await super().sha256(key)


@dataclass
class Leased:
    http: httpx.AsyncClient
    store: GatedStore
    job_id: str
    token: str
    attempt: int


@pytest.fixture
async def leased(inprocess: InProcess, tmp_path: Path) -> Leased:
    """A job leased to an agent, behind an in-process HQ whose store hashes at a gate."""
    store = GatedStore(root=tmp_path / "gated")
    inprocess.app.state.store = store
    async with inprocess.sessionmaker() as session, session.begin():
        agent = build_agent()
        job, _ = build_job()
        session.add_all([agent, job])
    async with inprocess.sessionmaker() as session, session.begin():
        [claimed] = await queue.claim_jobs(session, agent=agent, capacity=1, lease_ttl_seconds=60)
    assert claimed.lease_token is not None
    return Leased(inprocess.http, store, claimed.id, claimed.lease_token, claimed.attempts)


async def test_hashing_an_artifact_holds_no_lock_a_heartbeat_needs(
    leased: Leased, tmp_path: Path
) -> None:
    data = b"result bytes " * 1000
    source = tmp_path / "out.bin"
    source.write_bytes(data)
    await leased.store.put_file(artifact_key(leased.job_id, leased.attempt, "out.bin"), source)
    body = {
        "lease_token": leased.token,
        "status": "succeeded",
        "exit_code": 0,
        "artifacts": [
            {"path": "out.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        ],
    }
    completing = asyncio.create_task(
        leased.http.post(f"/api/v1/jobs/{leased.job_id}/complete", json=body)
    )
    await asyncio.wait_for(leased.store.hashing.wait(), PATIENCE_SECONDS)
    try:
        beat = await asyncio.wait_for(
            leased.http.post(
                f"/api/v1/jobs/{leased.job_id}/heartbeat", json={"lease_token": leased.token}
            ),
            PATIENCE_SECONDS,
        )
    finally:
        leased.store.gate.set()
    assert beat.status_code == 200, beat.text
    assert beat.json()["cancel_requested"] is False
    done = await completing
    assert done.status_code == 200, done.text
    assert done.json()["accepted"] is True
    listed = await leased.http.get(f"/api/v1/jobs/{leased.job_id}/artifacts")
    assert [a["path"] for a in listed.json()] == ["out.bin"]


async def test_a_stale_token_is_refused_before_anything_is_hashed(leased: Leased) -> None:
    body = {
        "lease_token": "0" * 32,
        "status": "succeeded",
        "exit_code": 0,
        "artifacts": [{"path": "out.bin", "size": 1, "sha256": "0" * 64}],
    }
    answer = await leased.http.post(f"/api/v1/jobs/{leased.job_id}/complete", json=body)
    assert answer.status_code == 409, answer.text
    assert not leased.store.hashing.is_set()


async def test_a_lease_lost_while_its_artifacts_are_hashed_is_refused(
    leased: Leased, inprocess: InProcess, tmp_path: Path
) -> None:
    """The transaction that accepts reads the job afresh: a lease requeued while HQ hashed
    (here by hand, as the reaper does) is no longer the agent's, whatever the first read saw."""
    data = b"late result " * 100
    source = tmp_path / "late.bin"
    source.write_bytes(data)
    await leased.store.put_file(artifact_key(leased.job_id, leased.attempt, "late.bin"), source)
    body = {
        "lease_token": leased.token,
        "status": "succeeded",
        "exit_code": 0,
        "artifacts": [
            {"path": "late.bin", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        ],
    }
    completing = asyncio.create_task(
        leased.http.post(f"/api/v1/jobs/{leased.job_id}/complete", json=body)
    )
    await asyncio.wait_for(leased.store.hashing.wait(), PATIENCE_SECONDS)
    try:
        async with inprocess.sessionmaker() as session, session.begin():
            await session.execute(
                update(Job)
                .where(Job.id == leased.job_id)
                .values(status="queued", lease_token=None, lease_expires_at=None, agent_id=None)
            )
    finally:
        leased.store.gate.set()
    done = await completing
    assert done.status_code == 409, done.text
    async with inprocess.sessionmaker() as session:
        job = await session.get(Job, leased.job_id)
    assert job is not None and job.status == "queued"
