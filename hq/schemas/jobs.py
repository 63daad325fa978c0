"""Jobs: submission, reads, results, logs, artifacts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, BeforeValidator, Field

from hq.schemas.common import QUEUE_PATTERN, JobStatus, Label, Metric, Model, ReadModel
from hq.schemas.limits import Time
from hq.schemas.resources import ResourceRequest
from hq.schemas.retries import MAX_RETRIES, RetryOn

MAX_PRIORITY = 1000

MAX_WAIT_SECONDS = 300.0  # the longest one request waits for a job to end (?wait=S)


def _none_as_empty(value: Any) -> Any:
    return {} if value is None else value


# A job's metrics by name; a row that holds none (NULL) reads as none.
MetricValues = Annotated[dict[str, Metric], BeforeValidator(_none_as_empty)]


class JobCreate(Model):
    script: str = Field(
        description="script name, optionally '@version'; the latest version if omitted"
    )
    params: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(
        default_factory=dict, description="input name -> 'dataset[@version]'"
    )
    priority: int = Field(
        default=0, ge=-MAX_PRIORITY, le=MAX_PRIORITY, description="higher runs first"
    )
    queue: str = Field(default="default", pattern=QUEUE_PATTERN)
    labels: list[Label] = Field(default_factory=list, max_length=32)
    max_attempts: int = Field(default=3, ge=1, le=20)
    timeout_s: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)
    resources: ResourceRequest | None = Field(
        default=None, description="memory, cpus, timeout_s of this job, up to the ceilings"
    )
    reuse: bool = Field(default=False, description="return a succeeded job with the same cache key")
    retry_on: list[RetryOn] = Field(
        default_factory=list, description="script failures to retry: oom, timeout, exit"
    )
    max_retries: int = Field(
        default=1, ge=0, le=MAX_RETRIES, description="at most this many retries of retry_on"
    )


class InputRef(ReadModel):
    dataset: str = Field(validation_alias=AliasChoices("dataset", "dataset_name"))
    version: int
    sha256: str
    size: int
    filename: str


class JobEvent(ReadModel):
    at: datetime
    kind: str
    attempt: int
    agent_id: str | None = None
    detail: str | None = None


class JobRead(ReadModel):
    id: str
    script: str = Field(validation_alias=AliasChoices("script", "script_name"))
    script_version: int
    image: str
    digest: str
    params: dict[str, Any]
    inputs: dict[str, InputRef]
    status: JobStatus
    priority: int
    queue: str
    labels: list[str]
    attempts: int
    max_attempts: int
    timeout_s: int
    resources: dict[str, Any] = Field(
        default_factory=dict, description="the limits the job runs with (memory, cpus, ...)"
    )
    reuse: bool
    cache_key: str
    reused_from: str | None = None
    sweep_id: str | None = None
    pipeline_id: str | None = None
    agent_id: str | None = None
    exit_code: int | None = None
    failure_reason: str | None = None
    failure_kind: str | None = None
    retry_on: list[str] = Field(default_factory=list)
    max_retries: int = 0
    script_retries: int = 0
    unschedulable_reason: str | None = None
    cancel_requested: bool = False
    metrics: MetricValues = Field(default_factory=dict)
    created_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None


class JobDetail(JobRead):
    events: list[JobEvent] = Field(default_factory=list)


class JobResult(ReadModel):
    job_id: str
    status: JobStatus
    metrics: MetricValues = Field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    charts: list[dict[str, Any]] = Field(default_factory=list)
    exit_code: int | None = None
    failure_reason: str | None = None
    reused_from: str | None = None


class ArtifactRead(ReadModel):
    path: str
    size: int
    sha256: str
    attempt: int
    created_at: datetime


class LogLine(Model):
    at: Time
    stream: str = Field(default="stdout", pattern="^(stdout|stderr|agent)$")
    text: str = Field(max_length=64 * 1024)


JOB_SORT_KEYS = (
    "created_at",
    "-created_at",
    "priority",
    "-priority",
    "status",
    "-status",
    "finished_at",
    "-finished_at",
    "script",
    "-script",
)
