"""Datasets: streamed uploads, immutable versions, presigned downloads, lineage, promotion."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request, Response, status
from fastapi.responses import RedirectResponse

from hq import errors
from hq.schemas.common import is_number
from hq.schemas.datasets import DatasetRead, DatasetVersionRead, Lineage, PromoteRequest
from hq.server.deps import SessionDep, SettingsDep, StoreDep, Uploader, Viewer
from hq.server.edge.openapi import raises
from hq.server.services import datasets as dataset_service
from hq.server.storage.uploads import receive_multipart_file

router = APIRouter(prefix="/api/v1/datasets", tags=["datasets"])

# Room for the multipart boundaries and part headers around the file itself.
MULTIPART_OVERHEAD_BYTES = 64 * 1024
# Version numbers are 32-bit in the database: a larger one is a 422, not a database error.
VersionPath = Annotated[int, Path(ge=1, le=2**31 - 1, description="version number, from 1")]


@router.post(
    "/{name}/versions",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetVersionRead,
    responses=raises(errors.BadRequest, errors.PayloadTooLarge),
    openapi_extra={
        "requestBody": {
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            }
        }
    },
)
async def upload_version(
    name: str,
    request: Request,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    _: Uploader,
) -> DatasetVersionRead:
    """Upload a file (multipart field ``file``) as the next version of dataset ``name``.

    The body streams to a temporary file while its sha256 is computed; past HQ_MAX_UPLOAD_BYTES
    it is refused (413). Bytes equal to the latest version return that version (200)."""
    dataset_service.check_name(name)
    declared = request.headers.get("content-length")
    if (
        declared
        and is_number(declared)
        and int(declared) > settings.max_upload_bytes + MULTIPART_OVERHEAD_BYTES
    ):
        raise errors.PayloadTooLarge(
            f"the upload ({declared} bytes) is larger than this server's limit of "
            f"{settings.max_upload_bytes} bytes (HQ_MAX_UPLOAD_BYTES)"
        )
    upload = await receive_multipart_file(
        chunks=request.stream(),
        content_type=request.headers.get("content-type"),
        spool_dir=settings.home / "tmp",
        max_bytes=settings.max_upload_bytes,
    )
    try:
        async with session.begin():
            version, created = await dataset_service.create_version(
                session, store=store, name=name, upload=upload, limits=settings.preview_limits
            )
    finally:
        upload.discard()
    if not created:
        response.status_code = status.HTTP_200_OK
    return version


@router.get("", response_model=list[DatasetRead])
async def list_datasets(session: SessionDep, _: Viewer) -> list[DatasetRead]:
    return await dataset_service.list_datasets(session)


@router.get("/{name}", response_model=DatasetRead)
async def get_dataset(name: str, session: SessionDep, _: Viewer) -> DatasetRead:
    """A dataset and all its versions, newest first."""
    return await dataset_service.get_dataset(session, name=name)


@router.get("/{name}/versions/{version}", response_model=DatasetVersionRead)
async def get_version(
    name: str, version: VersionPath, session: SessionDep, _: Viewer
) -> DatasetVersionRead:
    """One version: size, sha256, and for CSV/Parquet its rows, columns and first rows."""
    return await dataset_service.get_version(session, name=name, version=version)


@router.get("/{name}/versions/{version}/download", status_code=307, response_class=RedirectResponse)
async def download_version(
    name: str, version: VersionPath, session: SessionDep, store: StoreDep, _: Viewer
) -> RedirectResponse:
    """A redirect to a presigned URL (valid for 10 minutes) that serves the file."""
    url = await dataset_service.download_url(session, store=store, name=name, version=version)
    return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/{name}/versions/{version}/lineage", response_model=Lineage)
async def version_lineage(
    name: str, version: VersionPath, session: SessionDep, _: Viewer
) -> Lineage:
    """Which job wrote this version and which jobs read it."""
    return await dataset_service.lineage(session, name=name, version=version)


@router.post(
    "/{name}/promote", status_code=status.HTTP_201_CREATED, response_model=DatasetVersionRead
)
async def promote(
    name: str,
    body: PromoteRequest,
    session: SessionDep,
    settings: SettingsDep,
    store: StoreDep,
    _: Uploader,
) -> DatasetVersionRead:
    """Make a job's artifact the next version of dataset ``name``, so one script's output
    feeds the next."""
    if body.dataset != name:
        raise errors.ValidationFailed(
            f"the body names dataset {body.dataset!r} but the URL names {name!r}; make them equal",
            field="dataset",
        )
    async with session.begin():
        return await dataset_service.promote(
            session,
            store=store,
            spool_dir=settings.home / "tmp",
            job_id=body.job_id,
            path=body.path,
            name=name,
            limits=settings.preview_limits,
        )
