"""Agents, leases and the calls an agent makes while it runs a job."""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from hq.schemas.common import JobStatus, Label, Model, QueueName, ReadModel
from hq.schemas.jobs import LogLine
from hq.schemas.limits import Int32
from hq.schemas.manifest import Manifest
from hq.schemas.results import Results
from hq.schemas.retries import FailureKind

MAX_CLAIM_WAIT_SECONDS = 60.0
MAX_COMPLETE_BATCH = 256
INLINE_ARTIFACT_BYTES = 64 * 1024  # an artifact this small may come with complete itself
INLINE_TOTAL_BYTES = 256 * 1024  # and this much in all per job


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


class ReportedArtifact(ArtifactFile):
    """An artifact as ``complete`` lists it: a small one (``INLINE_ARTIFACT_BYTES``, and
    ``INLINE_TOTAL_BYTES`` in all) may carry its bytes, and then needs no upload."""

    data: str | None = Field(
        default=None,
        max_length=(INLINE_ARTIFACT_BYTES + 2) // 3 * 4,
        description="the file's bytes, base64 (instead of an upload; up to 64 KiB each, "
        "256 KiB per job)",
    )

    @field_validator("data")
    @classmethod
    def _is_base64(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                base64.b64decode(value, validate=True)
            except binascii.Error as exc:
                raise ValueError(f"data is not valid base64: {exc}") from None
        return value

    @classmethod
    def inline(cls, *, path: str, content: bytes) -> ReportedArtifact:
        return cls(
            path=path,
            size=len(content),
            sha256=hashlib.sha256(content).hexdigest(),
            data=base64.b64encode(content).decode("ascii"),
        )

    def content(self) -> bytes | None:
        """The inline bytes, or None for an uploaded artifact."""
        return None if self.data is None else base64.b64decode(self.data, validate=True)

    def listing(self) -> ArtifactFile:
        """Path, size and sha256 alone (what an upload URL is asked for)."""
        return ArtifactFile(path=self.path, size=self.size, sha256=self.sha256)


def _as_reported(value: Any) -> Any:
    """An ``ArtifactFile`` listed where a ``ReportedArtifact`` is taken is one (with no bytes)."""
    if isinstance(value, list):
        return [
            v.model_dump()
            if isinstance(v, ArtifactFile) and not isinstance(v, ReportedArtifact)
            else v
            for v in value
        ]
    return value


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
    artifacts: list[ReportedArtifact] = Field(default_factory=list, max_length=10_000)
    _reported = field_validator("artifacts", mode="before")(_as_reported)
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
    artifacts: list[ReportedArtifact] = Field(default_factory=list, max_length=10_000)
    _reported = field_validator("artifacts", mode="before")(_as_reported)
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
    """An agent's finished batch and its next claim in one request: ``items`` are settled as
    ``POST /jobs/complete`` would, and the claim runs as ``claim`` would (its first pass in the
    results' transaction, then the long poll)."""

    items: list[CompleteItem] = Field(default_factory=list, max_length=MAX_COMPLETE_BATCH)
    claim: ClaimRequest = Field(default_factory=ClaimRequest)


class CompleteAndClaimResponse(ReadModel):
    results: list[CompleteItemResponse]
    leases: list[Lease]
    drain: bool = False
