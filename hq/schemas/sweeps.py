"""Sweeps: a grid and/or random draws of params, times repeats, as one group of jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field, field_validator, model_validator

from hq.schemas.common import QUEUE_PATTERN, Label, Model, ReadModel
from hq.schemas.jobs import MAX_PRIORITY
from hq.schemas.resources import ResourceRequest
from hq.schemas.retries import MAX_RETRIES, RetryOn

MAX_SWEEP_JOBS = 10_000


class RandomParam(Model):
    """Draw uniformly from [low, high] (log-uniform with ``log``), or pick one of ``choices``."""

    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _either(self) -> RandomParam:
        if self.choices is not None:
            if not self.choices:
                raise ValueError("choices must not be empty")
        elif self.low is None or self.high is None or self.low > self.high:
            raise ValueError("give either choices, or low <= high")
        elif self.log and self.low <= 0:
            raise ValueError("log draws need low > 0")
        return self


class RandomSpec(Model):
    n: int = Field(ge=1, le=MAX_SWEEP_JOBS)
    seed: int = 0
    params: dict[str, RandomParam] = Field(min_length=1)


class SweepCreate(Model):
    script: str
    params: dict[str, Any] = Field(default_factory=dict, description="fixed params for every job")
    grid: dict[str, list[Any]] = Field(default_factory=dict, description="param -> values")
    random: RandomSpec | None = None
    repeats: int = Field(default=1, ge=1, le=1000)
    inputs: dict[str, str] = Field(default_factory=dict)
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    queue: str = Field(default="default", pattern=QUEUE_PATTERN)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    max_attempts: int = Field(default=3, ge=1, le=20)
    timeout_s: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    resources: ResourceRequest | None = None
    reuse: bool = True
    retry_on: list[RetryOn] = Field(default_factory=list)
    max_retries: int = Field(default=1, ge=0, le=MAX_RETRIES)
    max_failures: int | None = Field(
        default=None,
        ge=0,
        description="once more jobs than this have failed, cancel the jobs not yet started",
    )

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in grid.items():
            if not values:
                raise ValueError(f"grid.{name} must list at least one value")
        return grid


class SweepRead(ReadModel):
    id: str
    script: str = Field(validation_alias=AliasChoices("script", "script_name"))
    script_version: int
    total: int
    counts: dict[str, int]
    spec: dict[str, Any]
    created_at: datetime
    finished: bool

    @property
    def counts_text(self) -> str:
        """The jobs by status, as the CLI and the web app show them: ``failed: 1, queued: 4``."""
        return ", ".join(f"{k}: {v}" for k, v in sorted(self.counts.items()))


class ResultsTable(ReadModel):
    """Rows of params and metrics; ``columns`` lists param columns then metric columns."""

    columns: list[str]
    param_columns: list[str]
    metric_columns: list[str]
    rows: list[dict[str, Any]]
    next_cursor: str | None = None
