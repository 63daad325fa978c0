"""Webhooks: create, list, delete; and the deliveries each end of a job, sweep or pipeline makes.

Deliveries are an outbox: a job's end writes its deliveries in the transaction that ends it
(``job_ends``, registered with ``queue.ends.on_end`` at start-up), a pipeline's end through
``pipeline_ended``, so no end is lost when a process dies before anything was sent. A sweep
ends with its last job; since two last jobs can end in two transactions at once, neither seeing
the other, each job end of a sweep writes a check instead, and the delivery worker decides
after the commit (``webhook_deliveries.settle_sweep_checks``). The worker sends them
(``hq/server/webhook_worker.py``).

Who may do what: any reading role lists webhooks and their deliveries (never a secret: it is
shown once, at creation); submitters and admins create them; a submitter deletes only the
webhooks its own token created, an admin any.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import Page
from hq.schemas.webhooks import (
    FAILURE_STATUSES,
    AttemptRead,
    DeliveryRead,
    DeliveryStatus,
    WebhookCreate,
    WebhookCreated,
    WebhookEvent,
    WebhookRead,
)
from hq.server import paging
from hq.server.db.automation import Webhook, WebhookAttempt, WebhookDelivery, WebhookSweepCheck
from hq.server.db.models import Job
from hq.server.db.types import utcnow
from hq.server.services import webhook_targets
from hq.server.services.webhook_targets import Entry

SECRET_PREFIX = "whsec_"
DELIVERY_SORT = "-created_at"
MAX_TRIES_SHOWN = 50  # per delivery, in a listing


async def create_webhook(
    session: AsyncSession, *, body: WebhookCreate, created_by: str | None, allow: Sequence[Entry]
) -> WebhookCreated:
    """A webhook pointing where the allow-list lets it (else a 422 naming the URL and
    ``HQ_WEBHOOK_ALLOW``), with a new secret, shown this once."""
    webhook_targets.check_url(body.url, allow)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    row = Webhook(
        id=uuid.uuid4().hex,
        url=body.url,
        events=[e.value for e in body.events],
        failures_only=body.failures_only,
        script=body.script,
        description=body.description,
        secret=secret,
        created_by=created_by,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    return WebhookCreated.from_row(row, secret=secret)


async def list_webhooks(session: AsyncSession) -> list[WebhookRead]:
    rows = await session.scalars(select(Webhook).order_by(Webhook.created_at, Webhook.id))
    return [WebhookRead.model_validate(r) for r in rows]


async def _get_row(session: AsyncSession, *, webhook_id: str) -> Webhook:
    row = await session.get(Webhook, webhook_id)
    if row is None:
        raise errors.NotFound(f"webhook {webhook_id} not found; `hq webhook list` shows the ids")
    return row


async def get_webhook(session: AsyncSession, *, webhook_id: str) -> WebhookRead:
    return WebhookRead.model_validate(await _get_row(session, webhook_id=webhook_id))


async def delete_webhook(
    session: AsyncSession, *, webhook_id: str, token_id: str, is_admin: bool
) -> None:
    """Delete a webhook and its deliveries (a delivery not yet sent never will be)."""
    row = await _get_row(session, webhook_id=webhook_id)
    if not is_admin and row.created_by != token_id:
        raise errors.Forbidden(
            f"webhook {webhook_id} was created by another token; only it or an admin may delete it"
        )
    await session.delete(row)
    await session.flush()


async def list_deliveries(
    session: AsyncSession, *, webhook_id: str, limit: int, cursor: str | None
) -> Page[DeliveryRead]:
    """A webhook's deliveries, newest first, each with its tries."""
    await _get_row(session, webhook_id=webhook_id)
    stmt = select(WebhookDelivery).where(WebhookDelivery.webhook_id == webhook_id)
    if cursor:
        value, last_id = paging.decode_cursor(cursor, sort=DELIVERY_SORT, value_types=(datetime,))
        stmt = stmt.where(
            paging.after(
                WebhookDelivery.created_at,
                WebhookDelivery.id,
                value=value,
                last_id=last_id,
                descending=True,
            )
        )
    order = (WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc())
    rows = (await session.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    page, next_cursor = paging.cut_page(
        rows, limit, sort=DELIVERY_SORT, key=lambda d: (d.created_at, d.id)
    )
    tries: dict[str, list[AttemptRead]] = {d.id: [] for d in page}
    if page:
        found = await session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id.in_(list(tries)))
            .order_by(WebhookAttempt.id)
        )
        for attempt in found:
            tries[attempt.delivery_id].append(AttemptRead.model_validate(attempt))
    items = [
        DeliveryRead.from_row(d, body=json.loads(d.body), tries=tries[d.id][-MAX_TRIES_SHOWN:])
        for d in page
    ]
    return Page[DeliveryRead](items=items, next_cursor=next_cursor)


# -- ends -----------------------------------------------------------------------------------------


def matches(webhook: Webhook, *, event: WebhookEvent, status: str, script: str | None) -> bool:
    """Whether ``webhook`` wants this end: its kind, its script, and failures when it asks."""
    if event.value not in webhook.events:
        return False
    if webhook.script is not None and webhook.script != script:
        return False
    return not webhook.failures_only or status in FAILURE_STATUSES


def encode_body(body: dict[str, Any]) -> str:
    """The bytes that are signed and sent: compact, keys sorted, the same on every try."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)


def add_delivery(
    session: AsyncSession, *, webhook: Webhook, event: WebhookEvent, subject_id: str, body: str
) -> None:
    session.add(
        WebhookDelivery(
            id=uuid.uuid4().hex,
            webhook_id=webhook.id,
            event=event.header,
            subject_id=subject_id,
            status=DeliveryStatus.pending.value,
            body=body,
            attempts=0,
            next_attempt_at=utcnow(),
            created_at=utcnow(),
        )
    )


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def job_body(job: Job, *, public_url: str) -> dict[str, Any]:
    """What a receiver is told of a job's end."""
    api = f"{public_url}/api/v1/jobs/{job.id}"
    return {
        "event": WebhookEvent.job.header,
        "kind": "job",
        "id": job.id,
        "status": job.status,
        "script": job.script_name,
        "script_version": job.script_version,
        "failure_reason": job.failure_reason,
        "failure_kind": job.failure_kind,
        "exit_code": job.exit_code,
        "attempts": job.attempts,
        "sweep_id": job.sweep_id,
        "reused_from": job.reused_from,
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.started_at),
        "finished_at": _iso(job.finished_at),
        "links": {"job": api, "result": f"{api}/result", "logs": f"{api}/logs"},
    }


PUBLIC_URL_KEY = "hq_public_url"  # how clients reach this server, in ``session.info`` (the app)


async def job_ends(session: AsyncSession, jobs: Sequence[Job]) -> None:
    """The ``queue.ends`` listener: deliveries for the jobs that ended, and a sweep check per
    sweep they belong to, in their transaction. Links use ``session.info[PUBLIC_URL_KEY]``, so
    one listener serves every app in a process."""
    # No autoflush: a caller that leaves its writes to the commit (many jobs at once)
    # keeps doing so; the deliveries need no job row (a memoised job is not flushed yet).
    with session.no_autoflush:
        webhooks = list(await session.scalars(select(Webhook)))
    if not webhooks:
        return
    public_url = str(session.info.get(PUBLIC_URL_KEY, ""))
    for job in jobs:
        body: str | None = None
        for webhook in webhooks:
            if matches(webhook, event=WebhookEvent.job, status=job.status, script=job.script_name):
                body = body or encode_body(job_body(job, public_url=public_url))
                add_delivery(
                    session, webhook=webhook, event=WebhookEvent.job, subject_id=job.id, body=body
                )
    if any(WebhookEvent.sweep.value in w.events for w in webhooks):
        sweeps = sorted({job.sweep_id for job in jobs if job.sweep_id is not None})
        session.add_all(WebhookSweepCheck(sweep_id=s, created_at=utcnow()) for s in sweeps)


async def pipeline_ended(
    session: AsyncSession, *, pipeline_id: str, status: str, body: dict[str, Any]
) -> None:
    """Deliveries for a pipeline's end, in the caller's transaction (the pipeline service calls
    it where it writes the pipeline's final status). ``body`` is what receivers get, with
    ``event``, ``kind``, ``id`` and ``status`` set here."""
    webhooks = await session.scalars(select(Webhook))
    full = {
        **body,
        "event": WebhookEvent.pipeline.header,
        "kind": "pipeline",
        "id": pipeline_id,
        "status": status,
    }
    encoded = encode_body(full)
    for webhook in webhooks:
        if matches(webhook, event=WebhookEvent.pipeline, status=status, script=None):
            add_delivery(
                session,
                webhook=webhook,
                event=WebhookEvent.pipeline,
                subject_id=pipeline_id,
                body=encoded,
            )
    await session.flush()
