"""Jobs: submit (and wait, the serverless-style call), list, read, cancel; logs and artifacts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hq import errors
from hq.client._base import DEFAULT_TIMEOUT_SECONDS, BaseClient, build, query
from hq.schemas.common import Page
from hq.schemas.jobs import (
    MAX_WAIT_SECONDS,
    ArtifactRead,
    JobCreate,
    JobDetail,
    JobRead,
    JobResult,
)


class JobsClient(BaseClient):
    def submit_job(
        self,
        job: JobCreate | None = None,
        *,
        idempotency_key: str | None = None,
        wait_s: float | None = None,
        **fields: Any,
    ) -> JobRead:
        """Submit a job; with ``wait_s``, return once it has ended or ``wait_s`` has passed
        (longer than the server's one-request wait is several waits in turn)."""
        body = job if job is not None else build(JobCreate, fields)
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        deadline = time.monotonic() + (wait_s or 0.0)
        first_wait = min(wait_s, MAX_WAIT_SECONDS) if wait_s is not None else None
        created = self._json(
            "POST",
            "/api/v1/jobs",
            JobRead,
            body=body,
            headers=headers,
            params=query(wait=first_wait),
            timeout=(first_wait or 0.0) + DEFAULT_TIMEOUT_SECONDS,
        )
        left = deadline - time.monotonic()
        if created.status.finished or wait_s is None or left <= 0:
            return created
        return self.wait_job(created.id, timeout_s=left)

    def wait_job(self, job_id: str, *, timeout_s: float) -> JobDetail:
        """The job once it has ended, or as it stands after ``timeout_s``: long polls of at most
        the server's ``MAX_WAIT_SECONDS`` each, woken the moment the job ends."""
        deadline = time.monotonic() + timeout_s
        while True:
            wait = max(0.0, min(deadline - time.monotonic(), MAX_WAIT_SECONDS))
            job = self._json(
                "GET",
                f"/api/v1/jobs/{job_id}",
                JobDetail,
                params=query(wait=wait),
                timeout=wait + DEFAULT_TIMEOUT_SECONDS,
            )
            if job.status.finished or deadline - time.monotonic() <= 0:
                return job

    def list_jobs(
        self,
        *,
        status: str | list[str] | None = None,
        script: str | None = None,
        sweep: str | None = None,
        queue: str | None = None,
        created_after: str | None = None,
        created_before: str | None = None,
        sort: str = "-created_at",
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page[JobRead]:
        params = query(
            sort=sort,
            limit=limit,
            status=status,
            script=script,
            sweep=sweep,
            queue=queue,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
        )
        return self._json("GET", "/api/v1/jobs", Page[JobRead], params=params)

    def get_job(self, job_id: str) -> JobDetail:
        return self._json("GET", f"/api/v1/jobs/{job_id}", JobDetail)

    def job_result(self, job_id: str) -> JobResult:
        return self._json("GET", f"/api/v1/jobs/{job_id}/result", JobResult)

    def cancel_job(self, job_id: str) -> JobRead:
        return self._json("POST", f"/api/v1/jobs/{job_id}/cancel", JobRead)

    def job_logs(self, job_id: str) -> str:
        return self._request("GET", f"/api/v1/jobs/{job_id}/logs").text

    def follow_logs(self, job_id: str) -> Iterator[str]:
        """Yield log text as it arrives, until the job ends."""
        return self._stream_text(f"/api/v1/jobs/{job_id}/logs", params=query(follow=1))

    def list_artifacts(self, job_id: str) -> list[ArtifactRead]:
        return self._list(f"/api/v1/jobs/{job_id}/artifacts", ArtifactRead)

    def artifact_url(self, job_id: str, path: str) -> str:
        return self._location(f"/api/v1/jobs/{job_id}/artifacts/{path}")

    def download_artifact(
        self, job_id: str, path: str, dest: Path, *, sha256: str | None = None
    ) -> Path:
        """Download an artifact (of its latest recorded attempt) to ``dest``, checked against
        its sha256 (IntegrityError if the bytes differ; ``dest`` is then not written)."""
        if sha256 is None:
            listed = [a for a in self.list_artifacts(job_id) if a.path == path]
            if not listed:
                raise errors.NotFound(f"job {job_id} has no artifact {path!r}; see its list")
            sha256 = max(listed, key=lambda a: a.attempt).sha256
        self.download_url(self.artifact_url(job_id, path), dest, sha256=sha256)
        return dest
