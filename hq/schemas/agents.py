"""Agents, leases and the calls an agent makes while it runs a job."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from hq.schemas.common import JobStatus, Label, Model, QueueName, ReadModel
from hq.schemas.jobs import LogLine
from hq.schemas.limits import Int32
from hq.schemas.manifest import Manifest
from hq.schemas.results import Results
from hq.schemas.retries import FailureKind

MAX_CLAIM_WAIT_SECONDS = 60.0
MAX_COMPLETE_BATCH = 256


class AgentCreate(Model):
    name: str = Field(min_length=1, max_length=128)
    labels: list[Label] = Field(default_factory=list, max_length=64)
    capacity: int = Field(default=1, ge=1, le=256)
    gpus: int = Field(default=0, ge=0, le=64)
    queues: list[QueueName] = Field(
        default_factory=lambda: ["default"], min_length=1, max_length=64
    )


class AgentRead(ReadModel):
    id: str
    name: str
    labels: list[str]
    capacity: int
    gpus: int
    queues: list[str]
    status: str  # active | draining | offline
    running: int = 0
    drain_requested: bool
    warm: dict[str, int] = Field(default_factory=dict, description="warm containers per script")
    not_free: str | None = Field(
        default=None, description="why the agent takes no work: its host is not free"
    )
    paused: int = Field(default=0, description="jobs it holds paused while its host is busy")
    last_seen_at: datetime
    created_at: datetime


class WarmReport(Model):
    """What an agent reports of its warm containers: how many wait, per script."""

    waiting: dict[str, int] = Field(default_factory=dict, max_length=1024)


class AgentState(Model):
    """What a free-host agent reports: why its host is not free (None: free), jobs paused."""

    not_free: str | None = Field(default=None, max_length=512)
    paused: int = Field(default=0, ge=0, le=256)


class ClaimRequest(Model):
    capacity: int = Field(default=1, ge=1, le=256)
    wait_s: float = Field(default=20.0, ge=0, le=MAX_CLAIM_WAIT_SECONDS)


class InputDownload(ReadModel):
    name: str
    filename: str
    sha256: str
    size: int
    url: str


class Lease(ReadModel):
    job_id: str
    lease_token: str
    attempt: int
    lease_expires_at: datetime
    image: str
    digest: str
    manifest: Manifest
    params: dict[str, Any]
    inputs: list[InputDownload]
    timeout_s: int


class ClaimResponse(ReadModel):
    leases: list[Lease]
    drain: bool = False


class Heartbeat(Model):
    lease_token: str
    # Seconds the attempt has spent docker-paused so far (free-host agents): HQ's timeout
    # backstop does not count them.
    paused_s: Int32 = Field(default=0, ge=0)


class HeartbeatResponse(ReadModel):
    lease_expires_at: datetime
    cancel_requested: bool


class LogBatch(Model):
    lease_token: str
    lines: list[LogLine] = Field(max_length=10_000)


class ArtifactFile(Model):
    path: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class UploadRequest(Model):
    lease_token: str
    files: list[ArtifactFile] = Field(max_length=10_000)


class UploadUrl(ReadModel):
    path: str
    url: str


class UploadResponse(ReadModel):
    uploads: list[UploadUrl]


class CompleteRequest(Model):
    lease_token: str
    status: JobStatus = Field(description="succeeded, failed, timed_out or cancelled")
    exit_code: Int32 | None = None
    failure_reason: str | None = Field(default=None, max_length=4096)
    failure_kind: FailureKind | None = Field(
        default=None, description="why it failed (see hq.schemas.retries); decides a retry"
    )
    results: Results | None = None
    artifacts: list[ArtifactFile] = Field(default_factory=list, max_length=10_000)
    start: Literal["warm", "cold"] | None = Field(
        default=None, description="how the container started (counted in /metrics)"
    )
    logs: list[LogLine] = Field(
        default_factory=list,
        max_length=10_000,
        description="the attempt's last output lines, stored with an accepted result (so the "
        "end of a job needs no separate logs call)",
    )


class JobOutcome(Model):
    """How a job ended, as ``complete`` reports it: ``CompleteRequest`` but the lease token,
    which the one who holds the lease adds (the client's ``LeaseHandle``)."""

    status: JobStatus = Field(description="succeeded, failed, timed_out or cancelled")
    exit_code: Int32 | None = None
    failure_reason: str | None = Field(default=None, max_length=4096)
    failure_kind: FailureKind | None = Field(
        default=None, description="why it failed (see hq.schemas.retries); decides a retry"
    )
    results: Results | None = None
    artifacts: list[ArtifactFile] = Field(default_factory=list, max_length=10_000)
    start: Literal["warm", "cold"] | None = Field(
        default=None, description="how the container started (counted in /metrics)"
    )
    logs: list[LogLine] = Field(
        default_factory=list,
        max_length=10_000,
        description="the attempt's last output lines, stored with an accepted result (so the "
        "end of a job needs no separate logs call)",
    )


class CompleteResponse(ReadModel):
    job_id: str
    status: JobStatus
    accepted: bool


class CompleteItem(CompleteRequest):
    """One result in a batch: which job, then what ``complete`` takes."""

    job_id: str


class CompleteBatch(Model):
    """Several results in one request and one transaction; each is accepted or refused alone."""

    items: list[CompleteItem] = Field(min_length=1, max_length=MAX_COMPLETE_BATCH)


class CompleteItemResponse(ReadModel):
    """``accepted``, or the error code and message the single ``complete`` would have sent."""

    job_id: str
    accepted: bool
    status: JobStatus | None = None
    code: str | None = None
    message: str | None = None


class CompleteBatchResponse(ReadModel):
    results: list[CompleteItemResponse]


class CompleteAndClaim(Model):
    """An agent's finished batch and its next claim in one request: ``items`` are settled (and
    committed) first, as ``POST /jobs/complete`` would; then the claim runs as ``claim`` would,
    long poll included."""

    items: list[CompleteItem] = Field(default_factory=list, max_length=MAX_COMPLETE_BATCH)
    claim: ClaimRequest = Field(default_factory=ClaimRequest)


class CompleteAndClaimResponse(ReadModel):
    results: list[CompleteItemResponse]
    leases: list[Lease]
    drain: bool = False
