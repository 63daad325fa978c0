"""The claim statement's plan on PostgreSQL with a history: it must not read a table in full.

At a million jobs (bench/million.py) the claim took 19 ms instead of 8 at ten thousand: the
label check was an anti-join that PostgreSQL planned as a full scan of job_labels.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import event, text

from hq.server import queue
from hq.server.db.session import create_engine, create_sessionmaker
from tests.integration.test_deadline import copies
from tests.integration.test_queue import add_agent, add_jobs


async def test_postgresql_plans_the_claim_without_a_full_scan(pg_url: str) -> None:
    """20,000 finished jobs with a label each, 200 queued: the claim's plan (the statement the
    server sends, with its parameters) scans neither jobs nor job_labels in full."""
    from hq.server import migrations

    await asyncio.to_thread(migrations.upgrade, pg_url)
    engine = create_engine(pg_url)
    try:
        maker = create_sessionmaker(engine)
        [source] = await add_jobs(maker, 1, labels=["linux"])
        agent = await add_agent(maker, labels=["linux"], capacity=16)
        async with maker() as session, session.begin():
            for status, n in (("succeeded", 20_000), ("queued", 200)):
                await session.execute(
                    text(copies("NULL")), {"status": status, "n": n, "source": source}
                )
            await session.execute(
                text(
                    "INSERT INTO job_labels (job_id, label) SELECT id, 'linux' FROM jobs"
                    " WHERE id <> :source"
                ),
                {"source": source},
            )
            await session.execute(text("ANALYZE"))
        sent: list[tuple[str, Any]] = []

        def capture(_c: object, _cur: object, statement: str, params: Any, *_: object) -> None:
            if "UPDATE jobs" in statement:
                sent.append((statement, params))

        event.listen(engine.sync_engine, "before_cursor_execute", capture)
        async with maker() as session, session.begin():
            claimed = await queue.claim_jobs(
                session, agent=agent, capacity=16, lease_ttl_seconds=60
            )
            await session.rollback()
        event.remove(engine.sync_engine, "before_cursor_execute", capture)
        assert len(claimed) == 16 and len(sent) == 1
        statement, params = sent[0]
        async with engine.connect() as conn:
            plan = await conn.exec_driver_sql("EXPLAIN " + statement, params)
            lines = [row[0] for row in plan]
            await conn.rollback()
        scans = [line for line in lines if "Seq Scan on jobs" in line or "on job_labels" in line]
        assert not scans, "\n".join(lines)
    finally:
        await engine.dispose()
