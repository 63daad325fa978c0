"""The queue on real databases: SKIP LOCKED claims, leases, fencing, the reaper."""

from __future__ import annotations

import asyncio
import tempfile
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.agents import CompleteRequest
from hq.schemas.common import JobStatus
from hq.schemas.results import Results
from hq.server import queue
from hq.server.db.models import Agent, Job, JobEventRow, JobResultRow
from hq.server.db.session import create_engine, create_sessionmaker
from hq.server.db.types import utcnow
from hq.server.metrics import Metrics
from hq.server.queue.deadline import deadline_of
from hq.server.services import leases
from hq.server.storage.local import LocalStore
from tests.fixtures.factories import build_agent, build_job

Maker = async_sessionmaker[AsyncSession]


async def add_jobs(maker: Maker, n: int, **overrides: object) -> list[str]:
    ids = []
    async with maker() as session, session.begin():
        base = utcnow()
        for i in range(n):
            job, labels = build_job(created_at=base + timedelta(microseconds=i), **overrides)
            session.add(job)
            session.add_all(labels)
            ids.append(job.id)
    return ids


async def add_agent(maker: Maker, **overrides: object) -> Agent:
    async with maker() as session, session.begin():
        agent = build_agent(**overrides)
        session.add(agent)
    return agent


async def claim(maker: Maker, agent: Agent, capacity: int = 1, ttl: float = 30) -> list[Job]:
    async with maker() as session, session.begin():
        return await queue.claim_jobs(
            session, agent=agent, capacity=capacity, lease_ttl_seconds=ttl
        )


async def complete(maker: Maker, job: Job, token: str, **fields: object) -> object:
    body = CompleteRequest(lease_token=token, status=JobStatus.succeeded, exit_code=0, **fields)
    with tempfile.TemporaryDirectory() as root:  # no artifacts: the store is never read
        store = LocalStore(root=Path(root), public_url="http://hq", secret_key="k" * 32)
        return await leases.complete(
            sessionmaker=maker,
            store=store,
            metrics=Metrics(),
            job_id=job.id,
            body=body,
            agent_token_id=None,
        )


async def test_claim_orders_by_priority_then_age(sessionmaker: Maker) -> None:
    low = await add_jobs(sessionmaker, 2, priority=0)
    high = await add_jobs(sessionmaker, 1, priority=5)
    agent = await add_agent(sessionmaker)
    claimed = await claim(sessionmaker, agent, capacity=3)
    assert [j.id for j in claimed] == [*high, *low]
    assert all(j.status == "running" and j.attempts == 1 and j.lease_token for j in claimed)
    assert len({j.lease_token for j in claimed}) == 3


async def test_claim_filters_queue_labels_and_gpus(sessionmaker: Maker) -> None:
    [plain] = await add_jobs(sessionmaker, 1)
    [gpu] = await add_jobs(sessionmaker, 1, labels=["gpu"], gpus=1)
    [other_queue] = await add_jobs(sessionmaker, 1, queue="nightly")
    cpu_agent = await add_agent(sessionmaker, labels=["mem-32g"])
    assert [j.id for j in await claim(sessionmaker, cpu_agent, capacity=10)] == [plain]
    gpu_agent = await add_agent(sessionmaker, labels=["gpu"], gpus=1, queues=["default", "nightly"])
    assert {j.id for j in await claim(sessionmaker, gpu_agent, capacity=10)} == {gpu, other_queue}


async def test_claim_writes_the_lease_and_one_started_event_and_nothing_else(
    sessionmaker: Maker,
) -> None:
    """The claim statement binds the agent's labels and GPUs; they must not leak into the job."""
    [job_id] = await add_jobs(sessionmaker, 1, labels=["gpu"], gpus=1)
    agent = await add_agent(sessionmaker, labels=["gpu", "mem-32g"], gpus=2, capacity=4)
    [job] = await claim(sessionmaker, agent, capacity=4)
    async with sessionmaker() as session:
        stored = await session.get_one(Job, job_id)
        events = (
            await session.scalars(select(JobEventRow).where(JobEventRow.job_id == job_id))
        ).all()
    for seen in (job, stored):
        assert (seen.labels, seen.gpus, seen.queue) == (["gpu"], 1, "default")
        assert (seen.status, seen.attempts, seen.agent_id) == ("running", 1, agent.id)
        assert seen.lease_token == job.lease_token and seen.lease_expires_at is not None
    assert [(e.kind, e.attempt, e.agent_id) for e in events] == [("started", 1, agent.id)]


async def test_backoff_hides_a_job_until_run_after(sessionmaker: Maker) -> None:
    await add_jobs(sessionmaker, 1, run_after=utcnow() + timedelta(seconds=60))
    agent = await add_agent(sessionmaker)
    assert await claim(sessionmaker, agent) == []


async def test_stale_lease_cannot_complete_and_new_holder_wins(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1)
    first_agent = await add_agent(sessionmaker, name="first")
    [first] = await claim(sessionmaker, first_agent, ttl=0.05)
    await asyncio.sleep(0.1)
    async with sessionmaker() as session, session.begin():
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=30
        )
    assert reaped.requeued == 1
    second_agent = await add_agent(sessionmaker, name="second")
    [second] = await claim(sessionmaker, second_agent)
    assert second.attempts == 2 and second.lease_token != first.lease_token
    await complete(
        sessionmaker, second, second.lease_token or "", results=Results(metrics={"winner": 2.0})
    )
    with pytest.raises(errors.LeaseLost):
        await complete(
            sessionmaker, first, first.lease_token or "", results=Results(metrics={"winner": 1.0})
        )
    # The same token twice gets the first answer, and nothing changes.
    again = await complete(
        sessionmaker, second, second.lease_token or "", results=Results(metrics={"winner": 3.0})
    )
    assert getattr(again, "accepted", False) is True
    async with sessionmaker() as session:
        stored = await session.get(Job, job_id)
        results = (await session.scalars(select(JobResultRow))).all()
    assert stored is not None and stored.status == "succeeded"
    assert stored.metrics == {"winner": 2.0}
    assert len(results) == 1 and results[0].attempt == 2


async def test_lease_expiry_past_max_attempts_fails_as_lost(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=2)
    agent = await add_agent(sessionmaker)
    for attempt in (1, 2):
        [job] = await claim(sessionmaker, agent, ttl=0.01)
        assert job.attempts == attempt
        await asyncio.sleep(0.03)
        async with sessionmaker() as session, session.begin():
            await queue.reap(
                session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=30
            )
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
    assert job is not None and job.status == "failed" and job.failure_reason == queue.LOST_REASON


async def test_a_cancel_requested_job_whose_lease_expires_ends_cancelled_not_requeued(
    sessionmaker: Maker,
) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=3)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=0.01)
    async with sessionmaker() as session, session.begin():
        stored = await session.get(Job, job_id)
        assert stored is not None
        stored.cancel_requested = True
    await asyncio.sleep(0.03)
    async with sessionmaker() as session, session.begin():
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=30
        )
    assert (reaped.cancelled, reaped.requeued) == (1, 0)
    async with sessionmaker() as session:
        job = await session.get(Job, job_id)
        events = (
            await session.scalars(
                select(JobEventRow).where(JobEventRow.job_id == job_id).order_by(JobEventRow.id)
            )
        ).all()
    assert job is not None and job.status == "cancelled"
    assert job.failure_reason == "cancelled (its agent stopped reporting)"
    assert (events[-1].kind, events[-1].detail) == ("cancelled", "its agent stopped reporting")
    assert await claim(sessionmaker, agent) == []


async def test_requeue_backs_off_exponentially(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=5)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=0.01)
    await asyncio.sleep(0.03)
    async with sessionmaker() as session, session.begin():
        await queue.reap(
            session, backoff_seconds=10, backoff_max_seconds=300, timeout_slack_seconds=30
        )
        job = await session.get(Job, job_id)
        assert job is not None and job.status == "queued"
        assert 9 < (job.run_after - utcnow()).total_seconds() <= 10


async def test_due_since_reports_a_backoff_that_ended_not_a_new_job(sessionmaker: Maker) -> None:
    since = utcnow()
    await add_jobs(sessionmaker, 1, queue="new")  # its submission woke a claim already
    async with sessionmaker() as session:
        assert not await queue.due_since(session, since=since)
    await add_jobs(sessionmaker, 1, max_attempts=3)
    await claim(sessionmaker, await add_agent(sessionmaker), ttl=0.01)
    await asyncio.sleep(0.03)
    async with sessionmaker() as session, session.begin():
        await queue.reap(
            session, backoff_seconds=1, backoff_max_seconds=2, timeout_slack_seconds=30
        )
    async with sessionmaker() as session:  # a second: room for a loaded machine
        assert not await queue.due_since(session, since=since)  # still backing off
    await asyncio.sleep(1.1)
    async with sessionmaker() as session:
        assert await queue.due_since(session, since=since)


async def test_outage_grace_extends_running_leases(sessionmaker: Maker) -> None:
    await add_jobs(sessionmaker, 1)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=0.01)
    await asyncio.sleep(0.03)
    async with sessionmaker() as session, session.begin():
        assert await queue.extend_running_leases(session, grace_seconds=60) == 1
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=30
        )
    assert reaped == queue.ReapResult()


async def test_hq_backstops_a_timeout_the_agent_never_reported(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, timeout_s=1)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=600)
    async with sessionmaker() as session, session.begin():
        job = await session.get(Job, job_id)
        assert job is not None
        job.attempt_started_at = utcnow() - timedelta(seconds=5)
        job.deadline_at = job.attempt_started_at + timedelta(seconds=1)  # what the claim wrote
    async with sessionmaker() as session, session.begin():
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=1
        )
    assert reaped.timed_out == 1


async def test_the_timeout_backstop_does_not_count_paused_seconds(sessionmaker: Maker) -> None:
    """A free-host agent's heartbeats carry the attempt's paused seconds."""
    [job_id] = await add_jobs(sessionmaker, 1, timeout_s=1)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=600)
    async with sessionmaker() as session, session.begin():
        job = await session.get(Job, job_id)
        assert job is not None
        await queue.renew_lease(session, job=job, lease_ttl_seconds=600, paused_s=10)
        await queue.renew_lease(session, job=job, lease_ttl_seconds=600, paused_s=3)  # no less
        job.attempt_started_at = utcnow() - timedelta(seconds=5)  # 5 s ago, 10 s of it paused
        job.deadline_at = deadline_of(job)  # as a renewal at that time would have written it
    async with sessionmaker() as session, session.begin():
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=1
        )
        job = await session.get(Job, job_id)
        assert job is not None
        assert (reaped.timed_out, job.status, job.paused_s) == (0, "running", 10)
        job.attempt_started_at = utcnow() - timedelta(seconds=13)  # 13 s: 3 s running
        job.deadline_at = deadline_of(job)  # as a renewal at that time would have written it
    async with sessionmaker() as session, session.begin():
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=1
        )
    assert reaped.timed_out == 1


async def test_a_new_attempt_starts_with_no_paused_seconds(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, max_attempts=2)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=600)
    async with sessionmaker() as session, session.begin():
        job = await session.get(Job, job_id)
        assert job is not None
        await queue.renew_lease(session, job=job, lease_ttl_seconds=600, paused_s=10)
        job.lease_expires_at = utcnow() - timedelta(seconds=1)  # the agent died
        job.deadline_at = deadline_of(job)  # as a renewal at that time would have written it
    async with sessionmaker() as session, session.begin():
        reaped = await queue.reap(
            session, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=30
        )
    assert reaped.requeued == 1
    [again] = await claim(sessionmaker, agent, ttl=600)
    assert (again.id, again.attempts, again.paused_s) == (job_id, 2, 0)


async def test_reaper_locks_only_the_jobs_it_acts_on(pg_url: str) -> None:
    """A tick must not hold healthy running jobs: their heartbeats and completes would queue
    behind it. A second real connection locks a healthy job with NOWAIT while the tick is open."""
    from hq.server import migrations

    await asyncio.to_thread(migrations.upgrade, pg_url)
    engine = create_engine(pg_url)
    maker = create_sessionmaker(engine)
    try:
        [expired_id] = await add_jobs(maker, 1, max_attempts=3)
        agent = await add_agent(maker)
        await claim(maker, agent, ttl=0.01)
        healthy_ids = await add_jobs(maker, 3)
        await claim(maker, agent, capacity=3, ttl=600)
        await asyncio.sleep(0.03)
        async with maker() as reaper, reaper.begin():
            reaped = await queue.reap(
                reaper, backoff_seconds=0, backoff_max_seconds=0, timeout_slack_seconds=30
            )
            assert reaped == queue.ReapResult(requeued=1)
            async with maker() as other, other.begin():
                locked = (
                    await other.scalars(
                        select(Job.id).where(Job.id.in_(healthy_ids)).with_for_update(nowait=True)
                    )
                ).all()
            assert sorted(locked) == sorted(healthy_ids)
        async with maker() as session:
            job = await session.get(Job, expired_id)
        assert job is not None and job.status == "queued"
    finally:
        await engine.dispose()


@pytest.mark.slow
async def test_eight_concurrent_claimers_take_every_job_exactly_once(pg_url: str) -> None:
    from hq.server import migrations

    await asyncio.to_thread(migrations.upgrade, pg_url)
    engine = create_engine(pg_url)
    maker = create_sessionmaker(engine)
    try:
        await add_jobs(maker, 2000)
        agents = [await add_agent(maker, name=f"a{i}") for i in range(8)]
        seen: list[str] = []

        async def drain(agent: Agent) -> None:
            while batch := await claim(maker, agent, capacity=7):
                seen.extend(j.id for j in batch)

        await asyncio.gather(*(drain(a) for a in agents))
        counts = Counter(seen)
        assert len(counts) == 2000
        assert max(counts.values()) == 1
        async with maker() as session:
            statuses = Counter((await session.scalars(select(Job.status))).all())
        assert statuses == {"running": 2000}
    finally:
        await engine.dispose()


async def test_concurrent_claimers_on_sqlite_take_every_job_exactly_once(sqlite_url: str) -> None:
    """SQLite has no SKIP LOCKED: BEGIN IMMEDIATE makes each claim the only writer."""
    from hq.server import migrations

    await asyncio.to_thread(migrations.upgrade, sqlite_url)
    engine = create_engine(sqlite_url)
    maker = create_sessionmaker(engine)
    try:
        await add_jobs(maker, 400)
        agents = [await add_agent(maker, name=f"a{i}") for i in range(4)]
        seen: list[str] = []

        async def drain(agent: Agent) -> None:
            while batch := await claim(maker, agent, capacity=3):
                seen.extend(j.id for j in batch)

        await asyncio.gather(*(drain(a) for a in agents))
        assert len(seen) == len(set(seen)) == 400
    finally:
        await engine.dispose()


async def test_every_final_write_tells_the_end_listeners_inside_its_transaction(
    sessionmaker: Maker,
) -> None:
    """A listener sees each ended job once, with its final status, whichever path ended it, and
    what it writes commits or rolls back with the end itself."""
    seen: list[tuple[str, str]] = []

    async def listener(session: AsyncSession, jobs: object) -> None:
        for job in jobs:  # type: ignore[attr-defined]
            seen.append((job.id, job.status))
            session.add(JobEventRow(job_id=job.id, at=utcnow(), kind="noted"))

    queue.ends.on_end(listener)
    queue.ends.on_end(listener)  # a second registration changes nothing
    try:
        done, cancelled = await add_jobs(sessionmaker, 2)
        agent = await add_agent(sessionmaker)
        (job,) = await claim(sessionmaker, agent, capacity=1)
        assert job.id == done
        await complete(sessionmaker, job, job.lease_token or "")  # Finishes.write
        async with sessionmaker() as session, session.begin():
            row = await session.get(Job, cancelled)
            assert row is not None
            await queue.finish(session, job=row, status=JobStatus.cancelled, reason="by test")
        assert seen == [(done, "succeeded"), (cancelled, "cancelled")]
        async with sessionmaker() as session:
            noted = await session.scalars(
                select(JobEventRow.job_id).where(JobEventRow.kind == "noted")
            )
            assert sorted(noted) == sorted([done, cancelled])
    finally:
        queue.ends._listeners.remove(listener)
