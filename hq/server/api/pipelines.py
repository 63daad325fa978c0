"""Pipelines: submit a spec of steps, read them, cancel one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from hq import errors
from hq.schemas.common import Page, Role
from hq.schemas.pipelines import PipelineCreate, PipelineRead
from hq.server.deps import SessionDep, SettingsDep, Submitter, Viewer
from hq.server.edge.openapi import raises
from hq.server.services import pipelines as pipeline_service

router = APIRouter(prefix="/api/v1/pipelines", tags=["pipelines"])
MAX_PIPELINE_PAGE = 100  # each carries its steps


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PipelineRead,
    responses=raises(errors.NotFound),
)
async def submit_pipeline(
    body: PipelineCreate, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> PipelineRead:
    async with session.begin():
        return await pipeline_service.submit(
            session,
            body=body,
            created_by=principal.token_id,
            offline_seconds=settings.agent_offline_seconds,
            default_timeout_s=settings.default_timeout_seconds,
        )


@router.get("", response_model=Page[PipelineRead], responses=raises(errors.BadRequest))
async def list_pipelines(
    session: SessionDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_PIPELINE_PAGE)] = 50,
    cursor: str | None = None,
) -> Page[PipelineRead]:
    """Pipelines, newest first, each with its steps."""
    return await pipeline_service.list_pipelines(session, limit=limit, cursor=cursor)


@router.get("/{pipeline_id}", response_model=PipelineRead)
async def get_pipeline(pipeline_id: str, session: SessionDep, _: Viewer) -> PipelineRead:
    return await pipeline_service.get_pipeline(session, pipeline_id=pipeline_id)


@router.post(
    "/{pipeline_id}/cancel",
    response_model=PipelineRead,
    responses=raises(errors.Forbidden, errors.Conflict),
)
async def cancel_pipeline(
    pipeline_id: str, session: SessionDep, principal: Submitter
) -> PipelineRead:
    """Cancel the pipeline's unfinished steps (a submitter: only its own pipelines)."""
    owner = None if principal.role == Role.admin else principal.token_id
    async with session.begin():
        return await pipeline_service.cancel(session, pipeline_id=pipeline_id, owner_token_id=owner)
