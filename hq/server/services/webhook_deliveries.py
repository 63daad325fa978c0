"""The delivery worker's database side: settle sweep checks, claim due deliveries, record tries.

A claim takes due deliveries (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer)
and, in the same statement's transaction, counts the try and moves ``next_attempt_at`` past the
send's timeout, so no other worker or replica sends the same delivery while this one does; if
the sender dies, the delivery is due again once that hold has passed.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq.schemas.common import FINISHED_STATUSES, JobStatus
from hq.schemas.webhooks import DeliveryStatus, WebhookEvent
from hq.server.db.automation import Webhook, WebhookAttempt, WebhookDelivery, WebhookSweepCheck
from hq.server.db.models import Job, Sweep
from hq.server.db.types import utcnow
from hq.server.services.webhooks import add_delivery, encode_body, matches

CHECK_BATCH = 500
MAX_RESPONSE_CHARS = 1024  # of an answer's body, kept with its try
MAX_ERROR_CHARS = 500


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with the webhook's secret over ``<timestamp>.<body>``."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def sweep_status(counts: dict[str, int]) -> str:
    """A sweep's end in one word: succeeded (every job), failed (any failed or timed out), else
    cancelled."""
    if set(counts) <= {JobStatus.succeeded.value}:
        return JobStatus.succeeded.value
    if counts.get(JobStatus.failed.value) or counts.get(JobStatus.timed_out.value):
        return JobStatus.failed.value
    return JobStatus.cancelled.value


def sweep_body(
    sweep: Sweep, *, counts: dict[str, int], finished_at: Any, public_url: str
) -> dict[str, Any]:
    """What a receiver is told of a sweep's end."""
    api = f"{public_url}/api/v1/sweeps/{sweep.id}"
    return {
        "event": WebhookEvent.sweep.header,
        "kind": "sweep",
        "id": sweep.id,
        "status": sweep_status(counts),
        "script": sweep.script_name,
        "script_version": sweep.script_version,
        "total": sweep.total,
        "counts": counts,
        "failure_reason": None,
        "created_at": sweep.created_at.isoformat(),
        "finished_at": finished_at.isoformat() if finished_at is not None else None,
        "links": {"sweep": api, "results": f"{api}/results"},
    }


async def settle_sweep_checks(session: AsyncSession, *, public_url: str) -> int:
    """For each sweep a job of which ended since the last look: if none of its jobs is left
    unfinished, the deliveries of its end (once per webhook). How many sweeps ended."""
    checks = (
        await session.scalars(
            select(WebhookSweepCheck)
            .order_by(WebhookSweepCheck.id)
            .limit(CHECK_BATCH)
            .with_for_update(skip_locked=True)
        )
    ).all()
    if not checks:
        return 0
    ended = 0
    webhooks = list(await session.scalars(select(Webhook)))
    last_end: dict[str, datetime] = {}
    for check in checks:
        last_end[check.sweep_id] = max(
            check.created_at, last_end.get(check.sweep_id, check.created_at)
        )
    for sweep_id in sorted(last_end):
        # Webhooks created after the sweep's last job ended were not there to be told.
        told = [w for w in webhooks if w.created_at <= last_end[sweep_id]]
        ended += await _settle_sweep(
            session, sweep_id=sweep_id, webhooks=told, public_url=public_url
        )
    await session.execute(
        delete(WebhookSweepCheck).where(WebhookSweepCheck.id.in_([c.id for c in checks]))
    )
    await session.flush()
    return ended


async def _settle_sweep(
    session: AsyncSession, *, sweep_id: str, webhooks: list[Webhook], public_url: str
) -> int:
    # The lock makes two workers looking at one sweep take turns: the second sees the first's
    # deliveries and makes none of its own.
    sweep = await session.scalar(select(Sweep).where(Sweep.id == sweep_id).with_for_update())
    if sweep is None:
        return 0
    grouped = await session.execute(
        select(Job.status, func.count(), func.max(Job.finished_at))
        .where(Job.sweep_id == sweep_id)
        .group_by(Job.status)
    )
    counts: dict[str, int] = {}
    finished_at = None
    for status, n, last in grouped.all():
        counts[status] = n
        if JobStatus(status) in FINISHED_STATUSES and last is not None:
            finished_at = last if finished_at is None else max(finished_at, last)
    done = sum(n for s, n in counts.items() if JobStatus(s) in FINISHED_STATUSES)
    if done < sweep.total:
        return 0
    told = set(
        await session.scalars(
            select(WebhookDelivery.webhook_id).where(
                WebhookDelivery.event == WebhookEvent.sweep.header,
                WebhookDelivery.subject_id == sweep_id,
            )
        )
    )
    body = sweep_body(sweep, counts=counts, finished_at=finished_at, public_url=public_url)
    encoded = encode_body(body)
    for webhook in webhooks:
        wanted = matches(
            webhook, event=WebhookEvent.sweep, status=body["status"], script=sweep.script_name
        )
        if wanted and webhook.id not in told:
            add_delivery(
                session,
                webhook=webhook,
                event=WebhookEvent.sweep,
                subject_id=sweep_id,
                body=encoded,
            )
    return 1


@dataclass(frozen=True)
class Claimed:
    """A delivery taken for one try."""

    id: str
    attempt: int
    event: str
    url: str
    secret: str
    body: str


async def claim_due(session: AsyncSession, *, limit: int, hold_seconds: float) -> list[Claimed]:
    """Up to ``limit`` due deliveries, each with its try counted and held for ``hold_seconds``."""
    now = utcnow()
    rows = (
        await session.execute(
            select(WebhookDelivery, Webhook.url, Webhook.secret)
            .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
            .where(
                WebhookDelivery.status == DeliveryStatus.pending.value,
                WebhookDelivery.next_attempt_at <= now,
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=WebhookDelivery)
        )
    ).all()
    claimed = []
    for delivery, url, secret in rows:
        delivery.attempts += 1
        delivery.next_attempt_at = now + timedelta(seconds=hold_seconds)
        claimed.append(
            Claimed(
                id=delivery.id,
                attempt=delivery.attempts,
                event=delivery.event,
                url=url,
                secret=secret,
                body=delivery.body,
            )
        )
    await session.flush()
    return claimed


@dataclass(frozen=True)
class Outcome:
    """What one try got: a status code and the answer's start, or an error."""

    status_code: int | None
    error: str | None
    response: str
    duration_ms: float

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@dataclass(frozen=True)
class Retry:
    max_attempts: int
    base_seconds: float
    max_seconds: float

    def delay(self, attempt: int) -> float:
        """After failed try ``attempt`` (1-based): base, 2 x base, 4 x base, ... capped."""
        return float(min(self.base_seconds * 2 ** (attempt - 1), self.max_seconds))


async def record(
    session: AsyncSession, *, claimed: Claimed, outcome: Outcome, retry: Retry
) -> DeliveryStatus | None:
    """Keep the try and its answer; the delivery is delivered, due again later, or failed
    after its last try. None when the delivery is gone (its webhook was deleted)."""
    delivery = await session.get(WebhookDelivery, claimed.id, with_for_update=True)
    if delivery is None:
        return None
    now = utcnow()
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempt=claimed.attempt,
            at=now,
            status_code=outcome.status_code,
            error=outcome.error[:MAX_ERROR_CHARS] if outcome.error else None,
            response=outcome.response[:MAX_RESPONSE_CHARS],
            duration_ms=outcome.duration_ms,
        )
    )
    if delivery.status == DeliveryStatus.pending.value and delivery.attempts == claimed.attempt:
        delivery.last_status_code = outcome.status_code
        delivery.last_error = outcome.error[:MAX_ERROR_CHARS] if outcome.error else None
        if outcome.ok:
            delivery.status = DeliveryStatus.delivered.value
        elif delivery.attempts >= retry.max_attempts:
            delivery.status = DeliveryStatus.failed.value
        else:
            delivery.next_attempt_at = now + timedelta(seconds=retry.delay(delivery.attempts))
        if delivery.status != DeliveryStatus.pending.value:
            delivery.finished_at, delivery.next_attempt_at = now, None
    await session.flush()
    return DeliveryStatus(delivery.status)
