"""Datasets: immutable versions of content-addressed files in the object store.

A version is a row pointing at ``datasets/sha256/<hash>``; the same bytes are stored once however
many versions or datasets name them. Uploading bytes equal to a dataset's latest version returns
that version instead of a new one (an idempotent re-upload). Versions are never changed or deleted.
An object is stored before its row is written, so a failed transaction can leave an unreferenced
object (harmless: the next upload of those bytes reuses it) but never a row without its object.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from pathlib import Path, PurePosixPath

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import NAME_HELP, NAME_RE, is_number
from hq.schemas.datasets import DatasetRead, DatasetVersionRead, Lineage
from hq.server.db.models import Artifact, Dataset, DatasetVersion, Job, JobInput
from hq.server.storage import ObjectStore, dataset_key
from hq.server.storage.describe import (
    Description,
    PreviewLimits,
    describe_file,
    guess_content_type,
    is_tabular,
)
from hq.server.storage.uploads import ReceivedFile

logger = logging.getLogger(__name__)

DOWNLOAD_URL_SECONDS = 600
_VERSION_RETRIES = 5


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise errors.ValidationFailed(f"invalid dataset name {name!r}: {NAME_HELP}", field="name")
    return name


async def _latest(session: AsyncSession, *, name: str) -> DatasetVersion | None:
    return await session.scalar(
        select(DatasetVersion)
        .where(DatasetVersion.dataset_name == name)
        .order_by(DatasetVersion.version.desc())
        .limit(1)
    )


async def _add_version(
    session: AsyncSession,
    *,
    name: str,
    sha256: str,
    size: int,
    filename: str,
    description: Description,
    produced_by_job_id: str | None,
) -> tuple[DatasetVersion, bool]:
    """The next version of ``name`` (or its latest, when it holds the same bytes)."""
    if await session.get(Dataset, name) is None:
        try:
            async with session.begin_nested():
                session.add(Dataset(name=name))
        except IntegrityError:  # created meanwhile by a concurrent upload
            pass
    for _ in range(_VERSION_RETRIES):
        latest = await _latest(session, name=name)
        if (
            latest is not None
            and latest.sha256 == sha256
            and latest.produced_by_job_id == produced_by_job_id
        ):
            return latest, False
        row = DatasetVersion(
            dataset_name=name,
            version=(latest.version if latest else 0) + 1,
            sha256=sha256,
            size=size,
            filename=filename[:255],
            content_type=description.content_type,
            rows=description.rows,
            columns=description.columns,
            preview=description.preview,
            produced_by_job_id=produced_by_job_id,
        )
        try:
            async with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another upload took this version number: take the next one
            continue
        return row, True
    raise errors.Conflict(f"dataset {name!r} is being written by others; try again")


async def create_version(
    session: AsyncSession,
    *,
    store: ObjectStore,
    name: str,
    upload: ReceivedFile,
    limits: PreviewLimits | None = None,
) -> tuple[DatasetVersionRead, bool]:
    """Store an upload (once per distinct content) and record it as a dataset version.

    Returns the version and whether it was created. The caller owns ``upload`` and discards it.
    """
    check_name(name)
    description = await asyncio.to_thread(
        describe_file,
        upload.path,
        filename=upload.filename,
        content_type=upload.content_type,
        limits=limits,
    )
    key = dataset_key(upload.sha256)
    if await store.stat(key) is None:
        await store.put_file(key, upload.path, content_type=description.content_type)
    row, created = await _add_version(
        session,
        name=name,
        sha256=upload.sha256,
        size=upload.size,
        filename=upload.filename,
        description=description,
        produced_by_job_id=None,
    )
    logger.info(
        "dataset %s version %s (%s bytes, sha256 %s)%s",
        name,
        row.version,
        upload.size,
        upload.sha256,
        "" if created else " already present",
        extra={"dataset": name, "version": row.version},
    )
    return DatasetVersionRead.model_validate(row), created


async def list_datasets(session: AsyncSession) -> list[DatasetRead]:
    latest = (
        select(DatasetVersion.dataset_name, func.max(DatasetVersion.version).label("v"))
        .group_by(DatasetVersion.dataset_name)
        .subquery()
    )
    rows = await session.execute(
        select(Dataset, latest.c.v)
        .outerjoin(latest, latest.c.dataset_name == Dataset.name)
        .order_by(Dataset.name)
    )
    return [DatasetRead.from_row(d, latest_version=v) for d, v in rows]


async def get_dataset(session: AsyncSession, *, name: str) -> DatasetRead:
    dataset = await session.get(Dataset, name)
    if dataset is None:
        raise errors.NotFound(f"dataset {name!r} not found; see GET /api/v1/datasets")
    versions = (
        await session.scalars(
            select(DatasetVersion)
            .where(DatasetVersion.dataset_name == name)
            .order_by(DatasetVersion.version.desc())
        )
    ).all()
    return DatasetRead.from_row(
        dataset,
        latest_version=versions[0].version if versions else None,
        versions=[DatasetVersionRead.model_validate(v) for v in versions],
    )


async def get_version_row(
    session: AsyncSession, *, name: str, version: int | None
) -> DatasetVersion:
    """One version's row (the latest when ``version`` is None; for services), or NotFound
    saying what exists."""
    if version is None:
        row = await _latest(session, name=name)
    else:
        row = await session.scalar(
            select(DatasetVersion).where(
                DatasetVersion.dataset_name == name, DatasetVersion.version == version
            )
        )
    if row is not None:
        return row
    latest = await _latest(session, name=name)
    if latest is None:
        raise errors.NotFound(
            f"dataset {name!r} not found; upload it with 'hq dataset upload {name} FILE'"
        )
    raise errors.NotFound(
        f"dataset {name!r} has no version {version}; its versions are 1..{latest.version}"
    )


async def get_version(session: AsyncSession, *, name: str, version: int) -> DatasetVersionRead:
    row = await get_version_row(session, name=name, version=version)
    return DatasetVersionRead.model_validate(row)


async def resolve_input(session: AsyncSession, *, ref: str) -> DatasetVersion:
    """``name`` or ``name@version`` (or ``name@latest``) to a stored version's row, for
    submissions."""
    name, sep, version_text = ref.strip().partition("@")
    if not NAME_RE.fullmatch(name):
        raise errors.ValidationFailed(
            f"invalid dataset reference {ref!r}: use 'name' or 'name@version'; {NAME_HELP}"
        )
    version: int | None = None
    if sep and version_text != "latest":
        if not is_number(version_text) or not 1 <= int(version_text) < 2**31:
            raise errors.ValidationFailed(
                f"invalid dataset reference {ref!r}: the version after '@' must be a number "
                "from 1, or 'latest'"
            )
        version = int(version_text)
    return await get_version_row(session, name=name, version=version)


async def download_url(
    session: AsyncSession, *, store: ObjectStore, name: str, version: int
) -> str:
    row = await get_version_row(session, name=name, version=version)
    return await store.presign_get(
        dataset_key(row.sha256), expires_s=DOWNLOAD_URL_SECONDS, filename=row.filename
    )


async def lineage(session: AsyncSession, *, name: str, version: int) -> Lineage:
    """Which job wrote this version (if promoted from one) and which jobs read it."""
    row = await get_version_row(session, name=name, version=version)
    readers_q = select(JobInput.job_id).where(
        JobInput.dataset_name == name, JobInput.version == version
    )
    readers = (
        await session.scalars(
            select(Job.id).where(Job.id.in_(readers_q)).order_by(Job.created_at, Job.id)
        )
    ).all()
    return Lineage(
        dataset=name,
        version=version,
        produced_by_job=row.produced_by_job_id,
        read_by_jobs=list(readers),
    )


async def promote(
    session: AsyncSession,
    *,
    store: ObjectStore,
    spool_dir: Path,
    job_id: str,
    path: str,
    name: str,
    limits: PreviewLimits | None = None,
) -> DatasetVersionRead:
    """Make a job's artifact the next version of dataset ``name`` (lineage: produced by job)."""
    check_name(name)
    if await session.get(Job, job_id) is None:
        raise errors.NotFound(f"job {job_id} not found")
    artifact = await session.scalar(
        select(Artifact)
        .where(Artifact.job_id == job_id, Artifact.path == path)
        .order_by(Artifact.attempt.desc())
        .limit(1)
    )
    if artifact is None:
        known = (
            await session.scalars(
                select(Artifact.path).where(Artifact.job_id == job_id).order_by(Artifact.path)
            )
        ).all()
        listed = ", ".join(known[:20]) or "none"
        raise errors.NotFound(
            f"job {job_id} has no artifact {path!r} (its artifacts: {listed})", field="path"
        )
    filename = PurePosixPath(artifact.path).name
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    local = spool_dir / f"promote-{uuid.uuid4().hex}.part"
    try:
        description = Description(content_type=guess_content_type(filename))
        if is_tabular(filename):
            await store.get_file(artifact.key, local)
            description = await asyncio.to_thread(
                describe_file, local, filename=filename, limits=limits
            )
        key = dataset_key(artifact.sha256)
        if await store.stat(key) is None:
            await store.copy(artifact.key, key)
    finally:
        await asyncio.to_thread(local.unlink, True)
    row, _ = await _add_version(
        session,
        name=name,
        sha256=artifact.sha256,
        size=artifact.size,
        filename=filename,
        description=description,
        produced_by_job_id=job_id,
    )
    return DatasetVersionRead.model_validate(row)


async def adopt_artifact(
    session: AsyncSession, *, store: ObjectStore, artifact: Artifact, name: str
) -> DatasetVersion:
    """A job's artifact as a version of dataset ``name`` (lineage: produced by its job), so it
    can be another job's input: its bytes copied once to their content address. No preview (a
    pipeline's intermediate file is read by the next step, not browsed); the same bytes from the
    same job give the version already made."""
    check_name(name)
    key = dataset_key(artifact.sha256)
    if await store.stat(key) is None:
        await store.copy(artifact.key, key)
    filename = PurePosixPath(artifact.path).name
    row, _ = await _add_version(
        session,
        name=name,
        sha256=artifact.sha256,
        size=artifact.size,
        filename=filename,
        description=Description(content_type=guess_content_type(filename)),
        produced_by_job_id=artifact.job_id,
    )
    return row


async def add_produced_version(
    session: AsyncSession,
    *,
    name: str,
    sha256: str,
    size: int,
    filename: str,
    description: Description,
    produced_by_job_id: str | None,
) -> DatasetVersion:
    """A version of ``name`` for bytes already stored under their dataset key (made by HQ
    itself, e.g. a pipeline sweep step's results table)."""
    check_name(name)
    row, _ = await _add_version(
        session,
        name=name,
        sha256=sha256,
        size=size,
        filename=filename,
        description=description,
        produced_by_job_id=produced_by_job_id,
    )
    return row
