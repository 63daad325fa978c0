"""Webhook deliveries on real databases: written in the transaction that ends a job (or not at
all), a pipeline's end, claims that never hand one delivery to two workers, back-off to failed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.schemas.common import JobStatus
from hq.schemas.webhooks import DeliveryStatus, WebhookCreate, WebhookCreated
from hq.server import queue
from hq.server.app import create_app
from hq.server.db.automation import WebhookDelivery
from hq.server.db.models import Job
from hq.server.services import webhook_deliveries as deliveries
from hq.server.services import webhooks as webhook_service
from hq.server.services.webhook_targets import parse_allow
from hq.server.settings import ServerSettings
from tests.fixtures.factories import build_job
from tests.fixtures.inprocess import ADMIN_TOKEN
from tests.fixtures.webhooks import serve, verify

Maker = async_sessionmaker[AsyncSession]
ALLOW = parse_allow("127.0.0.1:9")
PUBLIC_URL = "http://hq.test"


class Boom(Exception):
    pass


@pytest.fixture
def job_ends(sessionmaker: Maker) -> Iterator[None]:
    """The app's listener, as ``create_app`` registers it (once per process: an app made in
    this process earlier may have registered it already, and keeps it)."""
    listener = webhook_service.job_ends
    had = listener in queue.ends._listeners
    queue.ends.on_end(listener)
    info = dict(sessionmaker.kw.get("info") or {})
    sessionmaker.configure(info={**info, webhook_service.PUBLIC_URL_KEY: PUBLIC_URL})
    yield
    if not had:
        queue.ends._listeners.remove(listener)


async def add_webhook(maker: Maker, **fields: object) -> WebhookCreated:
    body = WebhookCreate.model_validate(
        {"url": "http://127.0.0.1:9/h", "events": ["job"], **fields}
    )
    async with maker() as session, session.begin():
        return await webhook_service.create_webhook(
            session, body=body, created_by=None, allow=ALLOW
        )


async def add_job(maker: Maker) -> str:
    job, _ = build_job(status=JobStatus.running.value, attempts=1)
    async with maker() as session, session.begin():
        session.add(job)
    return job.id


async def end(maker: Maker, job_id: str, status: JobStatus, *, fail: bool = False) -> None:
    async with maker() as session, session.begin():
        job = await session.get(Job, job_id)
        assert job is not None
        await queue.finish(session, job=job, status=status, reason=f"ended {status}")
        if fail:
            raise Boom  # the transaction that ended the job rolls back


async def delivery_rows(maker: Maker) -> list[WebhookDelivery]:
    async with maker() as session:
        return list(await session.scalars(select(WebhookDelivery)))


async def test_a_job_end_writes_its_deliveries_in_its_own_transaction_or_not_at_all(
    sessionmaker: Maker, job_ends: None
) -> None:
    every = await add_webhook(sessionmaker)
    failures = await add_webhook(sessionmaker, failures_only=True)
    other_script = await add_webhook(sessionmaker, script="other")
    job_id = await add_job(sessionmaker)
    with pytest.raises(Boom):
        await end(sessionmaker, job_id, JobStatus.failed, fail=True)
    assert await delivery_rows(sessionmaker) == []
    await end(sessionmaker, job_id, JobStatus.failed)
    rows = await delivery_rows(sessionmaker)
    assert sorted(r.webhook_id for r in rows) == sorted([every.id, failures.id])
    assert other_script.id not in {r.webhook_id for r in rows}
    body = json.loads(rows[0].body)
    assert body["id"] == job_id and body["status"] == "failed" and body["event"] == "job.ended"
    assert body["failure_reason"] == "ended failed"
    assert body["links"]["job"] == f"{PUBLIC_URL}/api/v1/jobs/{job_id}"
    assert all(r.status == "pending" and r.attempts == 0 for r in rows)


async def test_pipeline_ended_writes_deliveries_for_pipeline_webhooks_only(
    sessionmaker: Maker,
) -> None:
    await add_webhook(sessionmaker)
    wanted = await add_webhook(sessionmaker, events=["pipeline"])
    failures = await add_webhook(sessionmaker, events=["pipeline"], failures_only=True)
    async with sessionmaker() as session, session.begin():
        await webhook_service.pipeline_ended(
            session, pipeline_id="p-1", status="succeeded", body={"name": "nightly"}
        )
    rows = await delivery_rows(sessionmaker)
    assert [r.webhook_id for r in rows] == [wanted.id]
    assert failures.id not in {r.webhook_id for r in rows}
    body = json.loads(rows[0].body)
    assert body == {
        "event": "pipeline.ended",
        "kind": "pipeline",
        "id": "p-1",
        "status": "succeeded",
        "name": "nightly",
    }
    assert rows[0].event == "pipeline.ended" and rows[0].subject_id == "p-1"


async def test_two_workers_never_claim_the_same_delivery_and_tries_back_off_to_failed(
    sessionmaker: Maker, job_ends: None
) -> None:
    await add_webhook(sessionmaker)
    for _ in range(6):
        await end(sessionmaker, await add_job(sessionmaker), JobStatus.succeeded)
    first_in = asyncio.Event()

    async def worker(hold: bool) -> list[deliveries.Claimed]:
        async with sessionmaker() as session, session.begin():
            claimed = await deliveries.claim_due(session, limit=4, hold_seconds=60)
            if hold:  # the other worker claims while this transaction is still open
                first_in.set()
                await asyncio.sleep(0.3)
            return claimed

    async def second() -> list[deliveries.Claimed]:
        await first_in.wait()
        return await worker(hold=False)

    a, b = await asyncio.gather(worker(hold=True), second())
    assert len(a) == 4 and len(b) == 2
    assert not {c.id for c in a} & {c.id for c in b}
    async with sessionmaker() as session, session.begin():  # all held: nothing is due
        assert await deliveries.claim_due(session, limit=10, hold_seconds=60) == []

    retry = deliveries.Retry(max_attempts=2, base_seconds=0.05, max_seconds=1)
    refused = deliveries.Outcome(status_code=503, error=None, response="busy", duration_ms=1.0)
    async with sessionmaker() as session, session.begin():
        status = await deliveries.record(session, claimed=a[0], outcome=refused, retry=retry)
    assert status is DeliveryStatus.pending
    await asyncio.sleep(0.1)  # past the back-off
    async with sessionmaker() as session, session.begin():
        again = await deliveries.claim_due(session, limit=10, hold_seconds=60)
    assert [c.id for c in again] == [a[0].id] and again[0].attempt == 2
    async with sessionmaker() as session, session.begin():
        status = await deliveries.record(session, claimed=again[0], outcome=refused, retry=retry)
        stale = await deliveries.record(session, claimed=a[0], outcome=refused, retry=retry)
    assert status is DeliveryStatus.failed and stale is DeliveryStatus.failed
    async with sessionmaker() as session:
        row = await session.get(WebhookDelivery, a[0].id)
        assert row is not None and row.attempts == 2 and row.next_attempt_at is None
        assert row.finished_at is not None and row.last_status_code == 503
        n = await session.scalar(select(func.count()).select_from(WebhookDelivery))
        assert n == 6


def test_retry_delays_double_up_to_the_cap() -> None:
    retry = deliveries.Retry(max_attempts=9, base_seconds=2, max_seconds=10)
    assert [retry.delay(n) for n in range(1, 6)] == [2, 4, 8, 10, 10]


async def test_a_pipeline_end_reaches_a_receiver_signed_through_the_apps_delivery_worker(
    db_url: str, tmp_path: Path
) -> None:
    """The app as ``hq server`` runs it (lifespan: migrations, the delivery worker), in this
    event loop; the pipeline service's call, as the merged pipeline code makes it."""
    with serve() as receiver:
        settings = ServerSettings(
            home=tmp_path / "hq",
            database_url=db_url,
            admin_token=ADMIN_TOKEN,
            webhook_allow=f"127.0.0.1:{receiver.port}",
            webhook_poll_seconds=0.05,
        )
        app = create_app(settings)
        async with (
            app.router.lifespan_context(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://hq",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            ) as http,
        ):
            answer = await http.post(
                "/api/v1/webhooks",
                json={"url": receiver.url("/pipes"), "events": ["pipeline"]},
            )
            assert answer.status_code == 201, answer.text
            secret = answer.json()["secret"]
            async with app.state.sessionmaker() as session, session.begin():
                await webhook_service.pipeline_ended(
                    session, pipeline_id="p-42", status="failed", body={"name": "nightly"}
                )
            got = await asyncio.to_thread(receiver.wait_for, "/pipes", 1)
        body = verify(got[0], secret)
        assert body["id"] == "p-42" and body["status"] == "failed"
        assert got[0].headers["X-HQ-Event"] == "pipeline.ended"


def test_a_sweep_ends_succeeded_failed_or_cancelled_by_its_jobs_counts() -> None:
    assert deliveries.sweep_status({"succeeded": 3}) == "succeeded"
    assert deliveries.sweep_status({"succeeded": 2, "timed_out": 1}) == "failed"
    assert deliveries.sweep_status({"failed": 1, "cancelled": 4}) == "failed"
    assert deliveries.sweep_status({"succeeded": 1, "cancelled": 2}) == "cancelled"


def test_a_signature_is_hmac_sha256_over_the_timestamp_dot_body() -> None:
    import hashlib
    import hmac

    body = b'{"id":"j"}'
    mac = hmac.new(b"whsec_k", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert deliveries.signature(secret="whsec_k", timestamp="1700000000", body=body) == (
        f"sha256={mac}"
    )
