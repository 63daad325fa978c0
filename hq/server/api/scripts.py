"""Scripts and their versions; publishing is the CI path."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from hq.schemas.scripts import ScriptRead, ScriptVersionCreate, ScriptVersionRead
from hq.server.deps import Publisher, SessionDep, Viewer
from hq.server.services import scripts as script_service

router = APIRouter(prefix="/api/v1/scripts", tags=["scripts"])


@router.get("", response_model=list[ScriptRead])
async def list_scripts(session: SessionDep, _: Viewer) -> list[ScriptRead]:
    return await script_service.list_scripts(session)


@router.get("/{name}", response_model=ScriptRead)
async def get_script(name: str, session: SessionDep, _: Viewer) -> ScriptRead:
    return await script_service.get_script(session, name=name)


@router.post(
    "/{name}/versions", status_code=status.HTTP_201_CREATED, response_model=ScriptVersionRead
)
async def publish_version(
    name: str, body: ScriptVersionCreate, session: SessionDep, response: Response, _: Publisher
) -> ScriptVersionRead:
    """Register an image as a new version. Republishing the latest digest and manifest
    returns the existing version (200)."""
    async with session.begin():
        version, created = await script_service.publish_version(session, name=name, body=body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return version
