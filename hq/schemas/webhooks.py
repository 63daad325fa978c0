"""Webhooks: a URL that HQ POSTs a signed JSON body to when a job, sweep or pipeline ends.

Each end makes one delivery per matching webhook; each try to send it is an attempt, with the
answer's status code (or the error), an excerpt of its body and how long it took.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from hq.schemas.common import Model, Name, ReadModel

MAX_URL_CHARS = 2048
SIGNATURE_HEADER = "X-HQ-Signature"  # "sha256=<hex>" of HMAC-SHA256(secret, "<timestamp>.<body>")
TIMESTAMP_HEADER = "X-HQ-Timestamp"  # unix seconds of this attempt, part of the signed string
EVENT_HEADER = "X-HQ-Event"  # "job.ended", "sweep.ended" or "pipeline.ended"
DELIVERY_HEADER = "X-HQ-Delivery"  # the delivery's id: the same on every try of one delivery
# An end that counts as a failure for ``failures_only``.
FAILURE_STATUSES = frozenset({"failed", "timed_out"})


class WebhookEvent(StrEnum):
    """What ends: ``job`` (every job), ``sweep`` (its last job), ``pipeline``."""

    job = "job"
    sweep = "sweep"
    pipeline = "pipeline"

    @property
    def header(self) -> str:
        """The ``X-HQ-Event`` value of this end."""
        return f"{self.value}.ended"


class DeliveryStatus(StrEnum):
    pending = "pending"  # waiting for its next try
    delivered = "delivered"  # a try got a 2xx answer
    failed = "failed"  # every try failed; no more tries


class WebhookCreate(Model):
    url: str = Field(min_length=1, max_length=MAX_URL_CHARS, description="http or https")
    events: list[WebhookEvent] = Field(min_length=1, max_length=3)
    failures_only: bool = Field(
        default=False, description="only ends with status failed or timed_out"
    )
    script: Name | None = Field(default=None, description="only jobs and sweeps of this script")
    description: str = Field(default="", max_length=256)

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[WebhookEvent]) -> list[WebhookEvent]:
        return sorted(set(events), key=list(WebhookEvent).index)

    @model_validator(mode="after")
    def _script_filter(self) -> WebhookCreate:
        if self.script is not None and WebhookEvent.pipeline in self.events:
            raise ValueError(
                "script filters job and sweep ends; a pipeline runs many scripts: "
                "drop --script or the pipeline event"
            )
        return self


class WebhookRead(ReadModel):
    id: str
    url: str
    events: list[WebhookEvent]
    failures_only: bool
    script: str | None = None
    description: str = ""
    created_by: str | None = None
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(description="shown once: HQ signs every delivery with it")


class AttemptRead(ReadModel):
    attempt: int
    at: datetime
    status_code: int | None = None
    error: str | None = None
    response: str = Field(default="", description="the answer's first bytes")
    duration_ms: float


class DeliveryRead(ReadModel):
    id: str
    webhook_id: str
    event: str
    subject_id: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None
    body: dict[str, Any]
    tries: list[AttemptRead] = Field(default_factory=list)
