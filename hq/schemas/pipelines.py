"""Pipelines: steps (a script, or a sweep of one) whose inputs are datasets or the files
other steps wrote, run in order of what they read, each step reused by content."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

from hq.schemas.common import QUEUE_PATTERN, Label, Model, Name, ReadModel
from hq.schemas.jobs import MAX_PRIORITY
from hq.schemas.resources import ResourceRequest
from hq.schemas.sweeps import RandomSpec

MAX_STEPS = 50
# ``from: <step>/outputs/<path>`` names a file a step wrote; ``<sweepstep>/results.csv`` names
# a sweep step's results table. Paths are relative, with no ``..`` part.
FROM_RE = re.compile(r"([a-z][a-z0-9-]{1,62})/(outputs/[A-Za-z0-9_.\-/]{1,512}|results\.csv)")


class FromStep(Model):
    """An input that is another step's output file, e.g. ``{"from": "clean/outputs/clean.csv"}``."""

    from_: str = Field(alias="from", description="'<step>/outputs/<path>' or '<step>/results.csv'")

    model_config = ConfigDict(extra="forbid", validate_by_name=True, serialize_by_alias=True)

    @field_validator("from_")
    @classmethod
    def _ref(cls, value: str) -> str:
        if not FROM_RE.fullmatch(value) or ".." in value.split("/") or "//" in value:
            raise ValueError(
                f"from {value!r} must be '<step>/outputs/<path>' or '<step>/results.csv'"
            )
        return value

    @property
    def step(self) -> str:
        return self.from_.split("/", 1)[0]

    @property
    def path(self) -> str:
        """The file under the step: ``outputs/clean.csv`` or ``results.csv``."""
        return self.from_.split("/", 1)[1]


def _input_kind(value: Any) -> str:
    return "dataset" if isinstance(value, str) else "from"


# A step's input: 'dataset[@version]', or {"from": ...}; the 422 speaks of the form given.
StepInput = Annotated[
    Annotated[str, Tag("dataset")] | Annotated[FromStep, Tag("from")], Discriminator(_input_kind)
]


class StepSweep(Model):
    """A step that is a sweep: its grid and/or random draws, times repeats (as SweepCreate)."""

    grid: dict[str, list[Any]] = Field(default_factory=dict)
    random: RandomSpec | None = None
    repeats: int = Field(default=1, ge=1, le=1000)
    max_failures: int | None = Field(default=None, ge=0)
    require: str = Field(
        default="all",
        pattern="^(all|any)$",
        description="the step succeeds when all its jobs succeeded ('all') or at least one ('any')",
    )

    @field_validator("grid")
    @classmethod
    def _grid_values(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for name, values in grid.items():
            if not values:
                raise ValueError(f"grid.{name} must list at least one value")
        return grid

    @model_validator(mode="after")
    def _something(self) -> StepSweep:
        if not self.grid and self.random is None and self.repeats == 1:
            raise ValueError("a sweep step needs a grid, random draws or repeats")
        return self


class StepSpec(Model):
    name: Name
    script: str = Field(description="script name, optionally '@version'")
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, StepInput] = Field(
        default_factory=dict,
        description="input name -> 'dataset[@version]' or {'from': '<step>/outputs/<path>'}",
    )
    sweep: StepSweep | None = None
    resources: ResourceRequest | None = None
    priority: int = Field(default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY)
    queue: str = Field(default="default", pattern=QUEUE_PATTERN)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    max_attempts: int = Field(default=3, ge=1, le=20)
    timeout_s: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)

    @property
    def needs(self) -> list[str]:
        """The steps this one reads from, in order, once each."""
        seen: list[str] = []
        for ref in self.inputs.values():
            if isinstance(ref, FromStep) and ref.step not in seen:
                seen.append(ref.step)
        return seen


class PipelineCreate(Model):
    name: Name
    steps: list[StepSpec] = Field(min_length=1, max_length=MAX_STEPS)
    reuse: bool = Field(
        default=True, description="a step whose content matches a succeeded job is not run again"
    )


class PipelineStatus(StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class StepRead(ReadModel):
    name: str
    script: str
    needs: list[str] = Field(default_factory=list)
    status: str = Field(description="a job status, or 'waiting' for the steps it reads from")
    reason: str | None = Field(default=None, description="why it was cancelled or failed")
    job_id: str | None = None
    sweep_id: str | None = None
    reused: bool = False
    reused_from: str | None = None


class PipelineRead(ReadModel):
    id: str
    name: str
    status: PipelineStatus
    reuse: bool = True
    created_at: datetime
    finished_at: datetime | None = None
    created_by: str | None = None
    steps: list[StepRead] = Field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.finished_at is not None
