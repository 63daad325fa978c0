"""The tables of what runs jobs on a user's behalf: pipelines, schedules and webhooks.

They live beside ``models`` (the core: scripts, datasets, jobs, agents, tokens) on the same
``Base``; importing ``hq.server.db`` loads both, so the metadata always holds every table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from hq.server.db.models import Base
from hq.server.db.types import BigIntPK, JSONType, UTCDateTime, utcnow

# -- pipelines ---------------------------------------------------------------------------------


class Pipeline(Base):
    """A submitted spec of steps; its status derives from the steps' jobs, kept here once final."""

    __tablename__ = "pipelines"
    __table_args__ = (Index("ix_pipelines_created", "created_at", "id"),)
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    reuse: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16))
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class PipelineStep(Base):
    """One step: its job (made at submit, ``waiting`` until what it reads from succeeded) or,
    for a sweep step, its sweep (made when the step can start)."""

    __tablename__ = "pipeline_steps"
    pipeline_id: Mapped[str] = mapped_column(
        ForeignKey("pipelines.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    needs: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))  # a sweep step's own; a job step's job wins
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    sweep_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)


# -- schedules ---------------------------------------------------------------------------------


class Schedule(Base):
    """A job or sweep body submitted on a cron expression (in ``timezone``) or every
    ``interval_s`` from ``anchor_at``; ``next_at`` is the next slot the firer owes."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_due", "paused", "next_at"),
        Index("ix_schedules_created", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(63))
    kind: Mapped[str] = mapped_column(String(16))
    body: Mapped[dict[str, Any]] = mapped_column(JSONType)
    cron: Mapped[str | None] = mapped_column(String(200), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    interval_s: Mapped[int | None] = mapped_column(Integer, nullable=True)
    anchor_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    catch_up: Mapped[str] = mapped_column(String(8), default="skip")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    paused_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleRun(Base):
    """One slot fired: the unique (schedule, slot) is the last guard against firing it twice."""

    __tablename__ = "schedule_runs"
    __table_args__ = (UniqueConstraint("schedule_id", "slot_at"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    schedule_id: Mapped[str] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    slot_at: Mapped[datetime] = mapped_column(UTCDateTime)
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    job_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    sweep_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    pipeline_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


# -- webhooks -------------------------------------------------------------------------------------


class Webhook(Base):
    """A URL HQ POSTs a signed body to when a job, sweep or pipeline ends."""

    __tablename__ = "webhooks"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSONType)
    failures_only: Mapped[bool] = mapped_column(Boolean, default=False)
    script: Mapped[str | None] = mapped_column(String(63), nullable=True)
    description: Mapped[str] = mapped_column(String(256), default="")
    # HQ signs with it, so it is kept as it is (a hash could not sign); never read back by the API.
    secret: Mapped[str] = mapped_column(String(128))
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One end told to one webhook: written in the transaction that ended it (an outbox)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        Index("ix_webhook_deliveries_webhook", "webhook_id", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    webhook_id: Mapped[str] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(36))
    status: Mapped[str] = mapped_column(String(16))
    body: Mapped[str] = mapped_column(Text)  # the exact bytes signed and sent, on every try
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class WebhookAttempt(Base):
    """One try to send a delivery, and its answer."""

    __tablename__ = "webhook_attempts"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    delivery_id: Mapped[str] = mapped_column(
        ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True
    )
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    response: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[float] = mapped_column(Float)


class WebhookSweepCheck(Base):
    """A job of a sweep ended: the delivery worker checks, after the commit, whether it was the
    sweep's last (a transaction cannot see the other last jobs ending at the same moment)."""

    __tablename__ = "webhook_sweep_checks"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    sweep_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
