"""Failure-aware retries on real databases: infrastructure failures are retried within
``max_attempts`` with backoff; the script's own failures only when the job asks (``retry_on``);
every attempt's end is in the timeline; a sweep past ``max_failures`` cancels what has not
started."""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.agents import CompleteRequest, CompleteResponse
from hq.schemas.common import JobStatus
from hq.schemas.results import Results
from hq.server import queue
from hq.server.db.models import Agent, Job, JobEventRow, JobResultRow, Sweep
from hq.server.metrics import Metrics
from hq.server.services import leases
from hq.server.storage.local import LocalStore
from tests.integration.test_queue import add_agent, add_jobs, claim

Maker = async_sessionmaker[AsyncSession]
NO_WAIT = queue.Backoff(seconds=0, max_seconds=0)


async def report(maker: Maker, job: Job, **fields: Any) -> CompleteResponse:
    body = CompleteRequest(lease_token=job.lease_token or "", **fields)
    with tempfile.TemporaryDirectory() as root:
        store = LocalStore(root=Path(root), public_url="http://hq", secret_key="k" * 32)
        return await leases.complete(
            sessionmaker=maker,
            store=store,
            metrics=Metrics(),
            job_id=job.id,
            body=body,
            agent_token_id=None,
            backoff=NO_WAIT,
        )


async def load(maker: Maker, job_id: str) -> tuple[Job, list[JobEventRow]]:
    async with maker() as session:
        job = await session.get_one(Job, job_id)
        events = (
            await session.scalars(
                select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
            )
        ).all()
    return job, list(events)


async def fail_until_final(
    maker: Maker, agent: Agent, job_id: str, **fields: Any
) -> tuple[Job, list[JobEventRow]]:
    """Claim and report the same failure until the job ends; the job and its events."""
    for _ in range(30):
        job, _events = await load(maker, job_id)
        if job.status != "queued":
            break
        [claimed] = await claim(maker, agent)
        await report(maker, claimed, **fields)
    return await load(maker, job_id)


async def test_an_infrastructure_failure_is_retried_until_max_attempts(
    sessionmaker: Maker,
) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=3)
    agent = await add_agent(sessionmaker)
    job, events = await fail_until_final(
        sessionmaker,
        agent,
        job_id,
        status=JobStatus.failed,
        failure_reason="image-unavailable: no such image",
        failure_kind="image-unavailable",
    )
    assert (job.status, job.attempts, job.failure_kind) == ("failed", 3, "image-unavailable")
    assert job.failure_reason == "image-unavailable: no such image"
    requeued = [e for e in events if e.kind == "requeued"]
    assert [e.attempt for e in requeued] == [1, 2]
    assert all("image-unavailable" in (e.detail or "") for e in requeued)
    assert all("infrastructure failure" in (e.detail or "") for e in requeued)
    assert [e.kind for e in events][-1] == "failed"


async def test_a_script_exiting_non_zero_is_not_retried(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=3)
    agent = await add_agent(sessionmaker)
    job, events = await fail_until_final(
        sessionmaker,
        agent,
        job_id,
        status=JobStatus.failed,
        exit_code=1,
        failure_reason="exit code 1",
        failure_kind="exit",
    )
    assert (job.status, job.attempts, job.failure_kind, job.exit_code) == ("failed", 1, "exit", 1)
    assert "requeued" not in [e.kind for e in events]


async def test_retry_on_oom_retries_an_oom_at_most_max_retries_times(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=1, retry_on=["oom"], max_retries=1)
    agent = await add_agent(sessionmaker)
    job, events = await fail_until_final(
        sessionmaker,
        agent,
        job_id,
        status=JobStatus.failed,
        exit_code=137,
        failure_reason="out-of-memory",
        failure_kind="oom",
    )
    assert (job.status, job.attempts, job.script_retries) == ("failed", 2, 1)
    [requeued] = [e for e in events if e.kind == "requeued"]
    assert "script failure" in (requeued.detail or "") and "out-of-memory" in (
        requeued.detail or ""
    )
    # A timeout was not asked for: it is not retried.
    [other] = await add_jobs(sessionmaker, 1, retry_on=["oom"], max_retries=3)
    job, _ = await fail_until_final(
        sessionmaker, agent, other, status=JobStatus.timed_out, failure_reason="timeout"
    )
    assert (job.status, job.attempts, job.failure_kind) == ("timed_out", 1, "timeout")


async def test_a_replayed_failure_report_gets_the_first_answer(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1)
    agent = await add_agent(sessionmaker)
    [claimed] = await claim(sessionmaker, agent)
    fields: dict[str, Any] = {"status": JobStatus.failed, "failure_kind": "start-failed"}
    first = await report(sessionmaker, claimed, **fields)
    again = await report(sessionmaker, claimed, **fields)
    assert first.accepted and again.accepted
    job, events = await load(sessionmaker, job_id)
    assert (job.status, job.attempts) == ("queued", 1)
    assert [e.kind for e in events].count("requeued") == 1


async def test_a_sweep_past_max_failures_cancels_what_has_not_started(
    sessionmaker: Maker,
) -> None:
    sweep_id = str(uuid.uuid4())
    async with sessionmaker() as session, session.begin():
        spec = {"script": "noop", "max_failures": 1}
        session.add(Sweep(id=sweep_id, script_name="noop", script_version=1, spec=spec, total=6))
    ids = await add_jobs(sessionmaker, 6, sweep_id=sweep_id)
    agent = await add_agent(sessionmaker)
    exit1: dict[str, Any] = {"status": JobStatus.failed, "exit_code": 1, "failure_kind": "exit"}
    [a, b] = await claim(sessionmaker, agent, capacity=2)
    await report(sessionmaker, a, **exit1)
    assert [(await load(sessionmaker, i))[0].status for i in ids].count("cancelled") == 0
    await report(sessionmaker, b, **exit1)  # the second failure: over the budget of 1
    statuses = [(await load(sessionmaker, i))[0].status for i in ids]
    assert sorted(statuses) == ["cancelled"] * 4 + ["failed"] * 2
    cancelled, _ = await load(
        sessionmaker, next(i for i, s in zip(ids, statuses, strict=True) if s == "cancelled")
    )
    assert "failure budget" in (cancelled.failure_reason or "")
    assert await claim(sessionmaker, agent) == []


async def test_a_stale_report_after_a_retry_is_refused(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1)
    agent = await add_agent(sessionmaker)
    [first] = await claim(sessionmaker, agent)
    await report(sessionmaker, first, status=JobStatus.failed, failure_kind="engine-error")
    [second] = await claim(sessionmaker, agent)
    assert second.attempts == 2
    await report(sessionmaker, second, status=JobStatus.succeeded, exit_code=0)
    with pytest.raises(errors.LeaseLost):
        await report(sessionmaker, first, status=JobStatus.succeeded, exit_code=0)
    job, _ = await load(sessionmaker, job_id)
    assert (job.status, job.attempts, job.failure_kind) == ("succeeded", 2, None)


async def test_a_retried_attempt_leaves_no_result_and_the_last_attempt_s_is_accepted(
    sessionmaker: Maker,
) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, retry_on=["exit"], max_retries=1)
    agent = await add_agent(sessionmaker)
    [first] = await claim(sessionmaker, agent)
    await report(
        sessionmaker,
        first,
        status=JobStatus.failed,
        exit_code=1,
        results=Results(metrics={"y": 1.0}),
    )
    [second] = await claim(sessionmaker, agent)
    await report(
        sessionmaker, second, status=JobStatus.succeeded, exit_code=0,
        results=Results(metrics={"y": 2.0}),
    )  # fmt: skip
    job, _ = await load(sessionmaker, job_id)
    async with sessionmaker() as session:
        rows = (
            await session.scalars(select(JobResultRow).where(JobResultRow.job_id == job_id))
        ).all()
    assert (job.status, job.attempts, job.metrics) == ("succeeded", 2, {"y": 2.0})
    assert [r.attempt for r in rows] == [2]
