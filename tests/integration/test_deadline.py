"""jobs.deadline_at on real databases: the claim and renewals write it, ends clear it, the reaper
finds due jobs through it (and through its index on PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import text

from hq.server import queue
from hq.server.db.models import Job
from hq.server.db.session import create_engine, create_sessionmaker
from tests.integration.test_queue import Maker, add_agent, add_jobs, claim, complete

SLACK = {"backoff_seconds": 0, "backoff_max_seconds": 0, "timeout_slack_seconds": 0}


async def stored(maker: Maker, job_id: str) -> Job:
    async with maker() as session:
        return await session.get_one(Job, job_id)


async def test_the_claim_writes_the_earlier_of_lease_expiry_and_timeout(
    sessionmaker: Maker,
) -> None:
    [short] = await add_jobs(sessionmaker, 1, timeout_s=5, priority=1)
    [long] = await add_jobs(sessionmaker, 1, timeout_s=3600)
    agent = await add_agent(sessionmaker, capacity=2)
    await claim(sessionmaker, agent, capacity=2, ttl=60)
    by_timeout, by_lease = await stored(sessionmaker, short), await stored(sessionmaker, long)
    assert by_timeout.attempt_started_at is not None and by_timeout.deadline_at is not None
    assert by_timeout.deadline_at == by_timeout.attempt_started_at + timedelta(seconds=5)
    assert by_lease.deadline_at == by_lease.lease_expires_at


async def test_renewal_moves_the_deadline_and_the_end_clears_it(sessionmaker: Maker) -> None:
    [job_id] = await add_jobs(sessionmaker, 1, timeout_s=3600)
    agent = await add_agent(sessionmaker)
    [job] = await claim(sessionmaker, agent, ttl=1)
    async with sessionmaker() as session, session.begin():
        row = await session.get_one(Job, job_id)
        await queue.renew_lease(session, job=row, lease_ttl_seconds=120)
    renewed = await stored(sessionmaker, job_id)
    assert renewed.deadline_at == renewed.lease_expires_at
    assert renewed.deadline_at is not None and job.deadline_at is not None
    assert renewed.deadline_at > job.deadline_at
    assert job.lease_token is not None
    await complete(sessionmaker, job, job.lease_token)
    assert (await stored(sessionmaker, job_id)).deadline_at is None


async def test_the_reaper_acts_on_a_passed_deadline_only(sessionmaker: Maker) -> None:
    [due] = await add_jobs(sessionmaker, 1, max_attempts=3)
    agent = await add_agent(sessionmaker)
    await claim(sessionmaker, agent, ttl=0.05)
    [healthy] = await add_jobs(sessionmaker, 1)
    await claim(sessionmaker, agent, ttl=600)
    await asyncio.sleep(0.1)
    async with sessionmaker() as session, session.begin():
        assert await queue.reap(session, **SLACK) == queue.ReapResult(requeued=1)
    requeued, running = await stored(sessionmaker, due), await stored(sessionmaker, healthy)
    assert requeued.status == "queued" and requeued.deadline_at is None
    assert running.status == "running" and running.deadline_at is not None


def copies(deadline: str) -> str:
    """INSERT :n copies of job :source, column by column (a row through jsonb costs ms each)."""
    changed = {
        "id": "md5(CAST(:status AS text) || g)",
        "status": "CAST(:status AS text)",
        "priority": "mod(g, 3)",
        "created_at": "now() - g * interval '1 second'",
        "deadline_at": deadline,
    }
    names = [column.name for column in Job.__table__.columns]
    values = ", ".join(changed.get(name, f"j.{name}") for name in names)
    return (
        f"INSERT INTO jobs ({', '.join(names)}) SELECT {values}"
        " FROM jobs j, generate_series(1, CAST(:n AS int)) g WHERE j.id = :source"
    )


async def test_postgresql_plans_the_reaper_and_the_claim_on_their_partial_indexes(
    pg_url: str,
) -> None:
    """With a history of 20,000 finished jobs, 200 queued and 200 running (copies of one real
    job), the planner takes the partial indexes: the reaper's scan does not read the running
    jobs, nor the claim's the finished ones."""
    from hq.server import migrations

    await asyncio.to_thread(migrations.upgrade, pg_url)
    engine = create_engine(pg_url)
    try:
        maker = create_sessionmaker(engine)
        [source] = await add_jobs(maker, 1)
        async with maker() as session, session.begin():
            for status, n, deadline in (
                ("succeeded", 20_000, "NULL"),
                ("queued", 200, "NULL"),
                ("running", 200, "now() + g * interval '1 second'"),
            ):
                await session.execute(
                    text(copies(deadline)), {"status": status, "n": n, "source": source}
                )
            await session.execute(text("ANALYZE jobs"))
        async with maker() as session:
            reaper = await session.execute(
                text("EXPLAIN SELECT id FROM jobs WHERE deadline_at < now() AND status = 'running'")
            )
            assert "ix_jobs_deadline" in " ".join(r[0] for r in reaper)
            claim_plan = await session.execute(
                text(
                    "EXPLAIN SELECT id FROM jobs WHERE status = 'queued' AND queue = 'default'"
                    " ORDER BY priority DESC, created_at, id LIMIT 16"
                )
            )
            assert "ix_jobs_queued" in " ".join(r[0] for r in claim_plan)
    finally:
        await engine.dispose()
