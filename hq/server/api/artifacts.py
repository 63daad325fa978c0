"""A job's artifacts: upload URLs for the agent holding the lease, listing and downloads."""

from __future__ import annotations

from fastapi import APIRouter, status
from fastapi.responses import RedirectResponse

from hq.schemas.agents import UploadRequest, UploadResponse
from hq.schemas.jobs import ArtifactRead
from hq.server.deps import AgentPrincipal, SessionDep, SettingsDep, StoreDep, Viewer
from hq.server.services import artifacts as artifact_service

router = APIRouter(prefix="/api/v1/jobs", tags=["artifacts"])


@router.post("/{job_id}/artifacts/uploads", response_model=UploadResponse)
async def upload_urls(
    job_id: str,
    body: UploadRequest,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    principal: AgentPrincipal,
) -> UploadResponse:
    """Presigned PUT URLs (15 minutes) for the listed files, scoped to the job's current
    attempt; the caller must hold the job's lease."""
    async with session.begin():
        return await artifact_service.create_upload_urls(
            session,
            store=store,
            job_id=job_id,
            lease_token=body.lease_token,
            agent_token_id=principal.scope_token_id,
            files=body.files,
            max_bytes=settings.max_upload_bytes,
        )


@router.get("/{job_id}/artifacts", response_model=list[ArtifactRead])
async def list_artifacts(job_id: str, session: SessionDep, _: Viewer) -> list[ArtifactRead]:
    return await artifact_service.list_artifacts(session, job_id=job_id)


@router.get("/{job_id}/artifacts/{path:path}", status_code=307, response_class=RedirectResponse)
async def download_artifact(
    job_id: str, path: str, session: SessionDep, store: StoreDep, _: Viewer
) -> RedirectResponse:
    """A redirect to a presigned URL (valid for 10 minutes) that serves the artifact."""
    url = await artifact_service.artifact_url(session, store=store, job_id=job_id, path=path)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
