"""Schedules: a job or a sweep submitted on a cron expression (in a time zone) or an interval."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, field_validator, model_validator

from hq.schemas import cron
from hq.schemas.common import Model, Name, ReadModel
from hq.schemas.limits import Time

MIN_INTERVAL_SECONDS = 1
MAX_INTERVAL_SECONDS = 366 * 24 * 3600


class ScheduleKind(StrEnum):
    """What a schedule submits; its ``body`` is that kind's submit body."""

    job = "job"  # body: JobCreate (POST /api/v1/jobs)
    sweep = "sweep"  # body: SweepCreate (POST /api/v1/sweeps)
    pipeline = "pipeline"  # body: PipelineCreate (POST /api/v1/pipelines)


class CatchUp(StrEnum):
    """What a schedule does about slots missed while no HQ server ran (or it was late)."""

    skip = "skip"  # missed slots do not run; next_at moves to the first slot to come
    once = "once"  # one run for the latest missed slot, then on as usual


class ScheduleCreate(Model):
    name: Name
    kind: ScheduleKind
    body: dict[str, Any] = Field(description="the submit body of the kind, checked at creation")
    cron: str | None = Field(
        default=None, max_length=200, description="5-field cron: minute hour dom month dow"
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA zone of the cron")
    interval_s: int | None = Field(default=None, ge=MIN_INTERVAL_SECONDS, le=MAX_INTERVAL_SECONDS)
    start_at: Time | None = Field(
        default=None, description="interval schedules: the first slot (default: now + interval)"
    )
    catch_up: CatchUp = CatchUp.skip
    paused: bool = False

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron.parse(value)  # CronError is a ValueError: a 422 naming "cron"
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        cron.zone(value)
        return value

    @field_validator("start_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a timezone, e.g. 2026-01-01T00:00:00Z")
        return value

    @model_validator(mode="after")
    def _one_timing(self) -> ScheduleCreate:
        if (self.cron is None) == (self.interval_s is None):
            raise ValueError("give exactly one of cron or interval_s")
        if self.start_at is not None and self.cron is not None:
            raise ValueError("start_at is for interval schedules; a cron names its own times")
        return self


class ScheduleRunRead(ReadModel):
    """One slot a schedule fired for: what it submitted, or why that failed."""

    schedule_id: str
    slot_at: datetime
    fired_at: datetime
    job_id: str | None = None
    sweep_id: str | None = None
    pipeline_id: str | None = None
    error: str | None = None


class ScheduleRead(ReadModel):
    id: str
    name: str
    kind: str
    body: dict[str, Any]
    cron: str | None = None
    timezone: str
    interval_s: int | None = None
    catch_up: str
    paused: bool
    paused_reason: str | None = None
    next_at: datetime | None = Field(default=None, description="the next slot; None: never")
    skipped: int = Field(default=0, description="slots missed and not run (catch_up: skip)")
    created_by: str | None = None
    created_at: datetime
    last_run: ScheduleRunRead | None = None

    @property
    def timing(self) -> str:
        """How the CLI and the web app show when it fires: ``*/5 * * * * (Europe/Paris)``."""
        if self.cron is not None:
            return f"{self.cron} ({self.timezone})"
        return f"every {self.interval_s} s"
