"""What an agent does with a lease it holds: heartbeat, ship logs, ask for upload URLs, complete.

``client.lease(job_id, token=...)`` is a ``LeaseHandle``: the job and its token, carried once, so
that what works on one lease (the agent's heartbeater, log shipper and reporting) never copies
the token about. The token-taking methods stay for callers that hold no handle.
"""

from __future__ import annotations

from hq.client._base import BaseClient, build
from hq.schemas.agents import (
    ArtifactFile,
    CompleteBatch,
    CompleteBatchResponse,
    CompleteItem,
    CompleteRequest,
    CompleteResponse,
    Heartbeat,
    HeartbeatResponse,
    JobOutcome,
    LogBatch,
    UploadRequest,
    UploadResponse,
)
from hq.schemas.jobs import LogLine


class LeasesClient(BaseClient):
    def lease(self, job_id: str, *, token: str) -> LeaseHandle:
        """A handle on the lease ``token`` of job ``job_id``."""
        return LeaseHandle(self, job_id=job_id, token=token)

    def heartbeat(self, job_id: str, *, lease_token: str, paused_s: int = 0) -> HeartbeatResponse:
        """Extend the lease (``paused_s``: the attempt's seconds paused so far); the answer says
        whether a cancel was asked for."""
        return self._json(
            "POST",
            f"/api/v1/jobs/{job_id}/heartbeat",
            HeartbeatResponse,
            body=Heartbeat(lease_token=lease_token, paused_s=paused_s),
        )

    def send_logs(self, job_id: str, *, lease_token: str, lines: list[LogLine]) -> None:
        body = build(LogBatch, {"lease_token": lease_token, "lines": lines})
        self._request("POST", f"/api/v1/jobs/{job_id}/logs", body=body)

    def artifact_uploads(
        self, job_id: str, *, lease_token: str, files: list[ArtifactFile]
    ) -> UploadResponse:
        """A presigned PUT URL for each of ``files`` (its size and sha256 checked later)."""
        body = build(UploadRequest, {"lease_token": lease_token, "files": files})
        return self._json(
            "POST", f"/api/v1/jobs/{job_id}/artifacts/uploads", UploadResponse, body=body
        )

    def complete(self, job_id: str, request: CompleteRequest) -> CompleteResponse:
        return self._json("POST", f"/api/v1/jobs/{job_id}/complete", CompleteResponse, body=request)

    def complete_many(self, items: list[CompleteItem]) -> CompleteBatchResponse:
        """Several results in one request; check each answer's ``accepted``."""
        return self._json(
            "POST",
            "/api/v1/jobs/complete",
            CompleteBatchResponse,
            body=CompleteBatch(items=items),
        )


class LeaseHandle:
    """One lease on one job: every call presents its token."""

    def __init__(self, client: LeasesClient, *, job_id: str, token: str) -> None:
        self._client = client
        self.job_id = job_id
        self.token = token

    def __repr__(self) -> str:  # never the token: it is a credential for this job
        return f"LeaseHandle(job_id={self.job_id!r})"

    def heartbeat(self, *, paused_s: int = 0) -> HeartbeatResponse:
        return self._client.heartbeat(self.job_id, lease_token=self.token, paused_s=paused_s)

    def send_logs(self, lines: list[LogLine]) -> None:
        self._client.send_logs(self.job_id, lease_token=self.token, lines=lines)

    def upload_urls(self, files: list[ArtifactFile]) -> UploadResponse:
        return self._client.artifact_uploads(self.job_id, lease_token=self.token, files=files)

    def complete(self, outcome: JobOutcome) -> CompleteResponse:
        """Report how the job ended: its status, exit code, results and artifacts."""
        fields = {name: getattr(outcome, name) for name in JobOutcome.model_fields}
        request = CompleteRequest(lease_token=self.token, **fields)
        return self._client.complete(self.job_id, request)
