"""The typed HTTP client for HQ's API, used by the CLI, the agent, the Dash app and the tests.

Sync (httpx). Errors come back as the ``hq.errors`` class the server raised, by its wire code.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, TypeVar

import httpx
from pydantic import BaseModel, ValidationError

from hq import errors
from hq.schemas.agents import (
    AgentCreate,
    AgentRead,
    ArtifactFile,
    ClaimRequest,
    ClaimResponse,
    CompleteBatch,
    CompleteBatchResponse,
    CompleteItem,
    CompleteRequest,
    CompleteResponse,
    HeartbeatResponse,
    UploadResponse,
)
from hq.schemas.common import Health, Page, Role
from hq.schemas.datasets import DatasetRead, DatasetVersionRead, Lineage
from hq.schemas.jobs import (
    MAX_WAIT_SECONDS,
    ArtifactRead,
    JobCreate,
    JobDetail,
    JobRead,
    JobResult,
    LogLine,
)
from hq.schemas.manifest import Manifest
from hq.schemas.scripts import ScriptRead, ScriptVersionRead
from hq.schemas.sweeps import ResultsTable, SweepCreate, SweepRead
from hq.schemas.tokens import TokenCreate, TokenCreated, TokenRead

M = TypeVar("M", bound=BaseModel)
CHUNK_BYTES = 1024 * 1024
DEFAULT_TIMEOUT_SECONDS = 30.0
SWEEP_POLL_SECONDS = 0.5  # wait_sweep asks this often; a sweep of jobs takes seconds at least


def raise_for_response(response: httpx.Response) -> None:
    """Turn an error response into the matching ``HQError`` subclass."""
    if response.is_success or response.is_redirect:
        return
    try:
        body = response.json()
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    code = str(body.get("code", ""))
    message = str(body.get("message") or response.text or response.reason_phrase)
    cls = errors.error_for(code=code, status_code=response.status_code)
    raise cls(message, field=body.get("field"), details=body.get("details"))


def build(model: type[M], fields: dict[str, Any]) -> M:
    """A request model built here fails as the server would: ValidationFailed naming the field
    (a bare pydantic error would reach the CLI as a traceback)."""
    try:
        return model(**fields)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or None
        message = f"{field}: {first['msg']}" if field else str(first["msg"])
        raise errors.ValidationFailed(message, field=field) from exc


def sha256_stream(fh: BinaryIO) -> str:
    """The sha256 hex digest of what is left in ``fh``, read in chunks."""
    digest = hashlib.sha256()
    for chunk in iter(lambda: fh.read(CHUNK_BYTES), b""):
        digest.update(chunk)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return sha256_stream(fh)


class HQClient:
    """One HQ server, one bearer token."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(
            base_url=self.url, headers=headers, timeout=timeout, transport=transport
        )
        # Presigned URLs carry their own authority: never send the bearer token with them.
        self._raw = httpx.Client(timeout=timeout, follow_redirects=True)

    def close(self) -> None:
        self._http.close()
        self._raw.close()

    def __enter__(self) -> HQClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise errors.TransportError(f"cannot reach HQ at {self.url}: {exc}") from exc
        raise_for_response(response)
        return response

    def _json(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._decode(self._request(method, path, **kwargs)))

    def _list(self, path: str, model: type[M], **kwargs: Any) -> list[M]:
        return [model.model_validate(x) for x in self._decode(self._request("GET", path, **kwargs))]

    def _decode(self, response: httpx.Response) -> Any:
        """The JSON of an HQ answer; anything else means ``url`` is not the HQ API."""
        try:
            return response.json()
        except ValueError:
            kind = response.headers.get("content-type", "no content type")
            raise errors.TransportError(
                f"{self.url} answered {response.status_code} with {kind}, not the HQ API: "
                "set HQ_URL to the API's address (make run prints it as 'HQ API'), "
                "not the Dash app's"
            ) from None

    @staticmethod
    def _body(model: BaseModel) -> dict[str, Any]:
        return model.model_dump(mode="json", exclude_unset=False)

    # -- health and tokens -------------------------------------------------------------------
    def health(self) -> Health:
        return self._json("GET", "/api/v1/health", Health)

    def create_token(self, *, name: str, role: str) -> TokenCreated:
        body = self._body(TokenCreate(name=name, role=Role(role)))
        return self._json("POST", "/api/v1/tokens", TokenCreated, json=body)

    def whoami(self) -> TokenRead:
        """The name and role of this client's own token."""
        return self._json("GET", "/api/v1/tokens/me", TokenRead)

    def list_tokens(self) -> list[TokenRead]:
        return self._list("/api/v1/tokens", TokenRead)

    def revoke_token(self, token_id: str) -> TokenRead:
        """Revoke a token at once; revoking it again is a no-op."""
        return self._json("POST", f"/api/v1/tokens/{token_id}/revoke", TokenRead)

    # -- scripts -----------------------------------------------------------------------------
    def list_scripts(self) -> list[ScriptRead]:
        return self._list("/api/v1/scripts", ScriptRead)

    def get_script(self, name: str) -> ScriptRead:
        return self._json("GET", f"/api/v1/scripts/{name}", ScriptRead)

    def publish_script_version(
        self, *, name: str, image: str, digest: str, manifest: Manifest | dict[str, Any]
    ) -> ScriptVersionRead:
        body = {
            "image": image,
            "digest": digest,
            "manifest": manifest.model_dump(mode="json")
            if isinstance(manifest, Manifest)
            else manifest,
        }
        return self._json("POST", f"/api/v1/scripts/{name}/versions", ScriptVersionRead, json=body)

    # -- datasets ----------------------------------------------------------------------------
    def upload_dataset(
        self, *, name: str, path: Path, filename: str | None = None
    ) -> DatasetVersionRead:
        with path.open("rb") as fh:
            return self.upload_dataset_stream(name=name, stream=fh, filename=filename or path.name)

    def upload_dataset_stream(
        self, *, name: str, stream: BinaryIO, filename: str
    ) -> DatasetVersionRead:
        files = {"file": (filename, stream, "application/octet-stream")}
        return self._json(
            "POST",
            f"/api/v1/datasets/{name}/versions",
            DatasetVersionRead,
            files=files,
            timeout=None,
        )

    def list_datasets(self) -> list[DatasetRead]:
        return self._list("/api/v1/datasets", DatasetRead)

    def get_dataset(self, name: str) -> DatasetRead:
        return self._json("GET", f"/api/v1/datasets/{name}", DatasetRead)

    def get_dataset_version(self, name: str, version: int) -> DatasetVersionRead:
        return self._json("GET", f"/api/v1/datasets/{name}/versions/{version}", DatasetVersionRead)

    def dataset_lineage(self, name: str, version: int) -> Lineage:
        return self._json("GET", f"/api/v1/datasets/{name}/versions/{version}/lineage", Lineage)

    def dataset_download_url(self, name: str, version: int) -> str:
        response = self._request("GET", f"/api/v1/datasets/{name}/versions/{version}/download")
        return str(response.headers["location"])

    def download_dataset(self, name: str, version: int, dest: Path) -> Path:
        self.download_url(self.dataset_download_url(name, version), dest)
        return dest

    def promote_artifact(self, *, job_id: str, path: str, dataset: str) -> DatasetVersionRead:
        body = {"job_id": job_id, "path": path, "dataset": dataset}
        return self._json(
            "POST", f"/api/v1/datasets/{dataset}/promote", DatasetVersionRead, json=body
        )

    # -- jobs --------------------------------------------------------------------------------
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
        body = self._body(job) if job is not None else self._body(build(JobCreate, fields))
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        deadline = time.monotonic() + (wait_s or 0.0)
        first_wait = min(wait_s, MAX_WAIT_SECONDS) if wait_s is not None else None
        created = self._json(
            "POST",
            "/api/v1/jobs",
            JobRead,
            json=body,
            headers=headers,
            params={"wait": first_wait} if first_wait is not None else {},
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
                params={"wait": wait},
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
        params: dict[str, Any] = {"sort": sort, "limit": limit}
        for key, value in (
            ("status", status),
            ("script", script),
            ("sweep", sweep),
            ("queue", queue),
            ("created_after", created_after),
            ("created_before", created_before),
            ("cursor", cursor),
        ):
            if value is not None:
                params[key] = ",".join(value) if isinstance(value, list) else value
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
        try:
            with self._http.stream(
                "GET",
                f"/api/v1/jobs/{job_id}/logs",
                params={"follow": 1},
                timeout=httpx.Timeout(10.0, read=None),
            ) as response:
                if not response.is_success:
                    response.read()
                    raise_for_response(response)
                yield from response.iter_text()
        except httpx.TransportError as exc:
            raise errors.TransportError(f"cannot reach HQ at {self.url}: {exc}") from exc

    def list_artifacts(self, job_id: str) -> list[ArtifactRead]:
        return self._list(f"/api/v1/jobs/{job_id}/artifacts", ArtifactRead)

    def artifact_url(self, job_id: str, path: str) -> str:
        response = self._request("GET", f"/api/v1/jobs/{job_id}/artifacts/{path}")
        return str(response.headers["location"])

    def download_artifact(self, job_id: str, path: str, dest: Path) -> Path:
        self.download_url(self.artifact_url(job_id, path), dest)
        return dest

    # -- sweeps and results ------------------------------------------------------------------
    def submit_sweep(self, sweep: SweepCreate | None = None, **fields: Any) -> SweepRead:
        body = self._body(sweep) if sweep is not None else self._body(build(SweepCreate, fields))
        return self._json("POST", "/api/v1/sweeps", SweepRead, json=body, timeout=120.0)

    def list_sweeps(
        self, *, script: str | None = None, limit: int = 50, cursor: str | None = None
    ) -> Page[SweepRead]:
        """Sweeps, newest first, each with its jobs counted by status."""
        params: dict[str, Any] = {"limit": limit}
        if script is not None:
            params["script"] = script
        if cursor is not None:
            params["cursor"] = cursor
        return self._json("GET", "/api/v1/sweeps", Page[SweepRead], params=params)

    def get_sweep(self, sweep_id: str) -> SweepRead:
        return self._json("GET", f"/api/v1/sweeps/{sweep_id}", SweepRead)

    def wait_sweep(
        self, sweep_id: str, *, timeout_s: float, poll_s: float = SWEEP_POLL_SECONDS
    ) -> SweepRead:
        """The sweep once every job has ended, or as it stands after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while True:
            sweep = self.get_sweep(sweep_id)
            left = deadline - time.monotonic()
            if sweep.finished or left <= 0:
                return sweep
            time.sleep(min(poll_s, left))

    def sweep_results(self, sweep_id: str) -> ResultsTable:
        return self._json("GET", f"/api/v1/sweeps/{sweep_id}/results", ResultsTable)

    def results(
        self,
        *,
        script: str,
        status: str | None = "succeeded",
        job_ids: list[str] | None = None,
        limit: int = 10_000,
        cursor: str | None = None,
    ) -> ResultsTable:
        """One page of the flat table, oldest job first; ``next_cursor`` is set while more
        rows remain (``iter_results`` follows it)."""
        params: dict[str, Any] = {"script": script, "format": "json", "limit": limit}
        if status:
            params["status"] = status
        if job_ids:
            params["jobs"] = ",".join(job_ids)
        if cursor:
            params["cursor"] = cursor
        return self._json("GET", "/api/v1/results", ResultsTable, params=params)

    def iter_results(
        self, *, script: str, status: str | None = "succeeded", page_rows: int = 10_000
    ) -> Iterator[ResultsTable]:
        """Every page of the flat table, in order."""
        cursor: str | None = None
        while True:
            page = self.results(script=script, status=status, limit=page_rows, cursor=cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def results_csv(
        self, *, script: str, status: str | None = "succeeded", limit: int | None = None
    ) -> str:
        """The whole flat table as CSV (or its oldest ``limit`` rows)."""
        params: dict[str, Any] = {"script": script, "format": "csv"}
        if limit is not None:
            params["limit"] = limit
        if status:
            params["status"] = status
        return self._request("GET", "/api/v1/results", params=params).text

    # -- agents ------------------------------------------------------------------------------
    def register_agent(self, agent: AgentCreate) -> AgentRead:
        return self._json("POST", "/api/v1/agents", AgentRead, json=self._body(agent))

    def list_agents(self) -> list[AgentRead]:
        return self._list("/api/v1/agents", AgentRead)

    def drain_agent(self, agent_id: str) -> AgentRead:
        return self._json("POST", f"/api/v1/agents/{agent_id}/drain", AgentRead)

    def claim(self, agent_id: str, *, capacity: int, wait_s: float) -> ClaimResponse:
        body = self._body(ClaimRequest(capacity=capacity, wait_s=wait_s))
        return self._json(
            "POST",
            f"/api/v1/agents/{agent_id}/claim",
            ClaimResponse,
            json=body,
            timeout=wait_s + DEFAULT_TIMEOUT_SECONDS,
        )

    def heartbeat(self, job_id: str, *, lease_token: str) -> HeartbeatResponse:
        return self._json(
            "POST",
            f"/api/v1/jobs/{job_id}/heartbeat",
            HeartbeatResponse,
            json={"lease_token": lease_token},
        )

    def send_logs(self, job_id: str, *, lease_token: str, lines: list[LogLine]) -> None:
        body = {"lease_token": lease_token, "lines": [x.model_dump(mode="json") for x in lines]}
        self._request("POST", f"/api/v1/jobs/{job_id}/logs", json=body)

    def artifact_uploads(
        self, job_id: str, *, lease_token: str, files: list[ArtifactFile]
    ) -> UploadResponse:
        body = {"lease_token": lease_token, "files": [f.model_dump() for f in files]}
        return self._json(
            "POST", f"/api/v1/jobs/{job_id}/artifacts/uploads", UploadResponse, json=body
        )

    def complete(self, job_id: str, request: CompleteRequest) -> CompleteResponse:
        return self._json(
            "POST", f"/api/v1/jobs/{job_id}/complete", CompleteResponse, json=self._body(request)
        )

    def complete_many(self, items: list[CompleteItem]) -> CompleteBatchResponse:
        """Several results in one request; check each answer's ``accepted``."""
        return self._json(
            "POST",
            "/api/v1/jobs/complete",
            CompleteBatchResponse,
            json=self._body(CompleteBatch(items=items)),
        )

    # -- presigned URLs (no bearer token) ----------------------------------------------------
    def download_url(self, url: str, dest: Path) -> None:
        """Stream a presigned GET to ``dest`` (written to a temp name, then renamed)."""
        tmp = dest.with_name(dest.name + ".part")
        try:
            with self._raw.stream("GET", url) as response:
                if not response.is_success:
                    response.read()
                    raise_for_response(response)
                with tmp.open("wb") as fh:
                    for chunk in response.iter_bytes(CHUNK_BYTES):
                        fh.write(chunk)
            tmp.replace(dest)
        except httpx.TransportError as exc:
            raise errors.TransportError(f"download failed: {exc}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def upload_url(self, url: str, path: Path) -> None:
        """PUT a file to a presigned URL, streaming it."""
        size = path.stat().st_size
        try:
            with path.open("rb") as fh:
                response = self._raw.put(
                    url, content=_iter_file(fh), headers={"Content-Length": str(size)}
                )
        except httpx.TransportError as exc:
            raise errors.TransportError(f"upload failed: {exc}") from exc
        raise_for_response(response)


def _iter_file(fh: BinaryIO) -> Iterator[bytes]:
    yield from iter(lambda: fh.read(CHUNK_BYTES), b"")


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
