"""The queue's hot path in database statements: a count does not depend on the machine's load.

A claim of 16 jobs and the completion of those 16 (each with metrics and a results table) are
each a handful of statements, whatever the batch size: set-based SQL, not one statement per job.
The app runs in-process on both databases; every statement sent to the database is counted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, select

from hq.server.db.models import Job, JobEventRow, JobResultRow
from tests.fixtures.factories import build_agent, build_job
from tests.fixtures.inprocess import InProcess

BATCH = 16
CLAIM_STATEMENTS = 3  # the agent's check-in, the claim, its events (SQLite: no DML in CTEs)
# lock the jobs, update them, insert events, insert results, look up webhooks (end listener), NOTIFY
COMPLETE_STATEMENTS = 6
# The app's background tasks are named hq-...: their ticks may fall inside a counted request.
BACKGROUND_TASK_PREFIX = "hq-"


@contextmanager
def counted(inprocess: InProcess) -> Iterator[list[str]]:
    sent: list[str] = []

    def count(*args: Any) -> None:
        task = asyncio.current_task()
        if task is not None and task.get_name().startswith(BACKGROUND_TASK_PREFIX):
            return  # the scheduler's, the reaper's or the webhook worker's tick, not the request's
        statement = " ".join(str(args[2]).split())
        if not statement.startswith("BEGIN"):  # SQLite's BEGIN IMMEDIATE: per transaction
            sent.append(statement[:90])

    engine = inprocess.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def test_a_batch_is_claimed_and_completed_in_a_few_statements(inprocess: InProcess) -> None:
    agent = build_agent(capacity=BATCH)
    async with inprocess.sessionmaker() as session, session.begin():
        session.add(agent)
        for _ in range(BATCH):
            job, _labels = build_job()
            session.add(job)
    assert (await inprocess.http.get("/api/v1/agents")).status_code == 200  # the token, cached
    with counted(inprocess) as claim_sent:
        answer = await inprocess.http.post(
            f"/api/v1/agents/{agent.id}/claim", json={"capacity": BATCH, "wait_s": 0}
        )
    assert answer.status_code == 200, answer.text
    leases = answer.json()["leases"]
    assert len(leases) == BATCH
    items = [
        {
            "job_id": lease["job_id"],
            "lease_token": lease["lease_token"],
            "status": "succeeded",
            "exit_code": 0,
            "results": {
                "metrics": {"score": float(i)},
                "tables": {"t": [{"a": i}]},
            },
        }
        for i, lease in enumerate(leases)
    ]
    with counted(inprocess) as complete_sent:
        answer = await inprocess.http.post("/api/v1/jobs/complete", json={"items": items})
    assert answer.status_code == 200, answer.text
    assert all(r["accepted"] for r in answer.json()["results"])
    assert len(claim_sent) <= CLAIM_STATEMENTS, claim_sent
    assert len(complete_sent) <= COMPLETE_STATEMENTS, complete_sent

    async with inprocess.sessionmaker() as session:
        jobs = (await session.scalars(select(Job).order_by(Job.id))).all()
        assert {j.status for j in jobs} == {"succeeded"}
        assert sorted(j.metrics["score"] for j in jobs) == [float(i) for i in range(BATCH)]
        assert all(j.completed_token == j.lease_token and j.finished_at for j in jobs)
        ended = await session.scalar(
            select(func.count()).select_from(JobEventRow).where(JobEventRow.kind == "succeeded")
        )
        assert ended == BATCH
        assert await session.scalar(select(func.count()).select_from(JobResultRow)) == BATCH

    # The same batch again is a replay: the first answers, and nothing written twice.
    answer = await inprocess.http.post("/api/v1/jobs/complete", json={"items": items + items[:1]})
    assert answer.status_code == 200, answer.text
    assert all(r["accepted"] for r in answer.json()["results"])
    async with inprocess.sessionmaker() as session:
        again = await session.scalar(
            select(func.count()).select_from(JobEventRow).where(JobEventRow.kind == "succeeded")
        )
        assert again == BATCH


async def publish_noop(inprocess: InProcess, params: dict[str, Any]) -> None:
    """Script ``noop`` (``true``, on an image no agent pulls here) with ``params`` its schema."""
    manifest = {"name": "noop", "command": ["true"], "params": params}
    published = await inprocess.http.post(
        "/api/v1/scripts/noop/versions",
        json={"image": "127.0.0.1:5000/noop", "digest": "sha256:" + "0" * 64, "manifest": manifest},
    )
    assert published.status_code == 201, published.text


SUBMIT_STATEMENTS = 6  # the version, live agents, the memo, the job, its event, NOTIFY (PG)


async def test_a_submission_is_a_few_statements(inprocess: InProcess) -> None:
    await publish_noop(inprocess, {"type": "object", "properties": {"i": {"type": "integer"}}})
    with counted(inprocess) as sent:
        answer = await inprocess.http.post(
            "/api/v1/jobs", json={"script": "noop", "params": {"i": 1}, "reuse": True}
        )
    assert answer.status_code == 201, answer.text
    assert len(sent) <= SUBMIT_STATEMENTS, sent


WAITERS = 8


async def test_a_waiting_submit_looks_at_its_job_again_only_when_that_job_ends(
    inprocess: InProcess,
) -> None:
    """Each end wakes the submits waiting for that job, not every waiting submit (which then
    each read their job again: a herd of reads per end with many waiters)."""
    await publish_noop(inprocess, {"type": "object"})
    agent = build_agent(capacity=WAITERS)
    async with inprocess.sessionmaker() as session, session.begin():
        session.add(agent)
    reads: dict[str, int] = {}

    def count(*args: Any) -> None:
        task = asyncio.current_task()
        statement = " ".join(str(args[2]).split())
        if task is not None and "FROM jobs" in statement and "WHERE jobs.id =" in statement:
            reads[task.get_name()] = reads.get(task.get_name(), 0) + 1

    async def submit_and_wait() -> str:
        answer = await inprocess.http.post("/api/v1/jobs?wait=30", json={"script": "noop"})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["status"])

    engine = inprocess.app.state.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        waiters = [
            asyncio.create_task(submit_and_wait(), name=f"waiter-{i}") for i in range(WAITERS)
        ]
        leases: list[dict[str, Any]] = []
        while len(leases) < WAITERS:
            answer = await inprocess.http.post(
                f"/api/v1/agents/{agent.id}/claim", json={"capacity": WAITERS, "wait_s": 5}
            )
            leases += answer.json()["leases"]
        for lease in leases:  # one end at a time: each wakes its own waiter
            item = {"job_id": lease["job_id"], "lease_token": lease["lease_token"]}
            answer = await inprocess.http.post(
                "/api/v1/jobs/complete",
                json={"items": [{**item, "status": "succeeded", "exit_code": 0}]},
            )
            assert answer.json()["results"][0]["accepted"], answer.text
            await asyncio.sleep(0.01)
        assert await asyncio.gather(*waiters) == ["succeeded"] * WAITERS
    finally:
        event.remove(engine, "before_cursor_execute", count)
    looks = {name: n for name, n in reads.items() if name.startswith("waiter-")}
    assert sum(looks.values()) <= 2 * WAITERS, looks  # a herd: about WAITERS**2 / 2
