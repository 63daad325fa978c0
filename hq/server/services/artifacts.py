"""Artifacts: the files a job wrote to /hq/outputs, stored under keys scoped to job and attempt.

The agent asks for presigned PUT URLs (holding the job's lease), uploads, and lists each file with
its size and sha256 when it completes the job. HQ checks every listed object against that claim
before it accepts the result, so a result never points at a missing or different file. A small
file (``INLINE_ARTIFACT_BYTES``) may instead come inside ``complete``, base64: HQ hashes those
bytes and stores them as the blob at once, with no upload URL, upload or snapshot.

An upload URL stays valid for its 15 minutes after the result is accepted, so what HQ checks and
keeps is not the upload key: ``complete`` snapshots each upload to a private key, hashes the
snapshot and stores it under ``blobs/sha256/<hash>``, a key no URL grants writes to. Downloads
and promotions read the blob; the upload objects are removed once the result is accepted.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.agents import (
    INLINE_ARTIFACT_BYTES,
    INLINE_TOTAL_BYTES,
    ArtifactFile,
    ReportedArtifact,
    UploadResponse,
    UploadUrl,
)
from hq.schemas.jobs import ArtifactRead
from hq.server import queue
from hq.server.db.models import Artifact, Job
from hq.server.storage import (
    ObjectStore,
    artifact_key,
    blob_key,
    check_relative_path,
    staging_key,
)

logger = logging.getLogger(__name__)

UPLOAD_URL_SECONDS = 900
DOWNLOAD_URL_SECONDS = 600


def check_artifact_path(path: str) -> str:
    """A relative path inside /hq/outputs: no '..', no absolute paths, no backslashes, no
    percent-escapes or control characters (see ``check_relative_path``)."""
    return check_relative_path(path, what="artifact path")


def _check_files(files: Sequence[ArtifactFile]) -> None:
    seen: set[str] = set()
    for f in files:
        check_artifact_path(f.path)
        if f.path in seen:
            raise errors.ValidationFailed(f"artifact {f.path!r} is listed twice", field="files")
        seen.add(f.path)


async def create_upload_urls(
    session: AsyncSession,
    *,
    store: ObjectStore,
    job_id: str,
    lease_token: str,
    agent_token_id: str | None,
    files: Sequence[ArtifactFile],
    max_bytes: int,
) -> UploadResponse:
    """Presigned PUT URLs for the current attempt of a job the caller holds the lease on."""
    job = await queue.get_leased_job(
        session, job_id=job_id, lease_token=lease_token, agent_token_id=agent_token_id
    )
    _check_files(files)
    for f in files:
        if f.size > max_bytes:
            raise errors.PayloadTooLarge(
                f"artifact {f.path!r} is {f.size} bytes, over this server's limit of "
                f"{max_bytes} bytes (HQ_MAX_UPLOAD_BYTES)",
                field="files",
            )
    uploads = [
        UploadUrl(
            path=f.path,
            url=await store.presign_put(
                artifact_key(job.id, job.attempts, f.path), expires_s=UPLOAD_URL_SECONDS
            ),
        )
        for f in files
    ]
    return UploadResponse(uploads=uploads)


@dataclass(frozen=True)
class VerifiedArtifacts:
    """Artifacts of one attempt, each hashed to its declared size and sha256 and stored under
    its ``blob_key``.

    Made only by ``verify_artifacts``, which reads the store with no transaction open (hashing
    a large file takes seconds, and a transaction would hold locks all that time); the
    transaction that accepts the result records them with ``record_artifacts``."""

    job_id: str
    attempt: int
    files: tuple[ReportedArtifact, ...]


def _refusal(f: ArtifactFile, message: str, **details: object) -> errors.ValidationFailed:
    return errors.ValidationFailed(message, field="artifacts", details={"path": f.path, **details})


async def _adopt(store: ObjectStore, *, job_id: str, attempt: int, f: ArtifactFile) -> None:
    """Snapshot the upload to a private key, hash the snapshot, and store it as its blob.

    The upload key stays writable through its presigned URL, so it is never what is checked:
    the snapshot is, and only a snapshot that matches becomes the blob. A blob already there
    holds the same bytes (only this function writes blobs). The snapshot is removed on every
    path, so a refusal or a crash in here leaves no staging object behind."""
    staging = staging_key()
    try:
        try:
            await store.copy(artifact_key(job_id, attempt, f.path), staging)
        except errors.NotFound:
            raise _refusal(
                f,
                f"artifact {f.path!r} was not uploaded for attempt {attempt}: upload it to the "
                "URL from POST /api/v1/jobs/{id}/artifacts/uploads before completing",
                problem="missing",
            ) from None
        info = await store.stat(staging)
        size = info.size if info is not None else 0
        if size != f.size:
            raise _refusal(
                f,
                f"artifact {f.path!r} is {size} bytes in storage but declared as {f.size}",
                problem="size",
                stored=size,
                declared=f.size,
            )
        actual = await store.sha256(staging)
        if actual != f.sha256:
            raise _refusal(
                f,
                f"artifact {f.path!r} has sha256 {actual} in storage but was declared as "
                f"{f.sha256}",
                problem="sha256",
                stored=actual,
                declared=f.sha256,
            )
        if not await store.exists(blob_key(f.sha256)):
            await store.copy(staging, blob_key(f.sha256))
    finally:
        await store.delete(staging)


def _inline_content(f: ReportedArtifact) -> bytes:
    """The bytes of an artifact sent inline, checked against its declared size and sha256."""
    content = f.content()
    assert content is not None
    if len(content) != f.size:
        raise _refusal(
            f,
            f"artifact {f.path!r} came with {len(content)} bytes but was declared as {f.size}",
            problem="size",
            stored=len(content),
            declared=f.size,
        )
    actual = hashlib.sha256(content).hexdigest()
    if actual != f.sha256:
        raise _refusal(
            f,
            f"artifact {f.path!r} came with bytes of sha256 {actual} but was declared as "
            f"{f.sha256}",
            problem="sha256",
            stored=actual,
            declared=f.sha256,
        )
    return content


def _check_inline(files: Sequence[ReportedArtifact]) -> None:
    total = 0
    for f in files:
        if f.data is None:
            continue
        if f.size > INLINE_ARTIFACT_BYTES:
            raise errors.PayloadTooLarge(
                f"artifact {f.path!r} is {f.size} bytes, over the {INLINE_ARTIFACT_BYTES} "
                "that may come inline: upload it to a URL from "
                "POST /api/v1/jobs/{id}/artifacts/uploads instead",
                field="artifacts",
            )
        total += f.size
    if total > INLINE_TOTAL_BYTES:
        raise errors.PayloadTooLarge(
            f"{total} bytes of artifacts came inline, over the {INLINE_TOTAL_BYTES} a result "
            "may carry: upload the larger ones",
            field="artifacts",
        )


async def verify_artifacts(
    *, store: ObjectStore, job_id: str, attempt: int, files: Sequence[ReportedArtifact]
) -> VerifiedArtifacts:
    """Check that each listed artifact was uploaded (or came inline) with the declared size
    and sha256, and keep the checked bytes where no upload URL reaches. Raises
    ValidationFailed naming the artifact and what differs."""
    _check_files(files)
    _check_inline(files)
    for f in files:
        if f.data is None:
            await _adopt(store, job_id=job_id, attempt=attempt, f=f)
            continue
        content = _inline_content(f)
        if not await store.exists(blob_key(f.sha256)):
            await store.put_bytes(blob_key(f.sha256), content)
    return VerifiedArtifacts(job_id=job_id, attempt=attempt, files=tuple(files))


async def discard_uploads(store: ObjectStore, *, verified: VerifiedArtifacts) -> None:
    """Remove an accepted attempt's upload objects (their bytes live on as blobs)."""
    for f in verified.files:
        if f.data is not None:  # it came inline: there is no upload
            continue
        try:
            await store.delete(artifact_key(verified.job_id, verified.attempt, f.path))
        except errors.HQError as exc:  # only space is lost; nothing reads these keys
            logger.warning("could not remove the upload of %s: %s", f.path, exc)


async def record_artifacts(session: AsyncSession, *, verified: VerifiedArtifacts) -> list[Artifact]:
    """Record the verified artifacts of an attempt (replacing any recorded before)."""
    job_id, attempt = verified.job_id, verified.attempt
    await session.execute(
        delete(Artifact).where(Artifact.job_id == job_id, Artifact.attempt == attempt)
    )
    rows = [
        Artifact(
            job_id=job_id,
            attempt=attempt,
            path=f.path,
            size=f.size,
            sha256=f.sha256,
            key=blob_key(f.sha256),
        )
        for f in verified.files
    ]
    session.add_all(rows)
    await session.flush()
    logger.info("recorded %d artifacts", len(rows), extra={"job_id": job_id, "attempt": attempt})
    return rows


async def _job_or_404(session: AsyncSession, *, job_id: str) -> Job:
    job = await session.get(Job, job_id)
    if job is None:
        raise errors.NotFound(f"job {job_id} not found")
    return job


async def list_artifacts(session: AsyncSession, *, job_id: str) -> list[ArtifactRead]:
    await _job_or_404(session, job_id=job_id)
    rows = (
        await session.scalars(
            select(Artifact)
            .where(Artifact.job_id == job_id)
            .order_by(Artifact.path, Artifact.attempt)
        )
    ).all()
    return [ArtifactRead.model_validate(r) for r in rows]


async def artifact_url(session: AsyncSession, *, store: ObjectStore, job_id: str, path: str) -> str:
    """A short-lived download URL for one artifact (of the accepted attempt)."""
    check_artifact_path(path)
    await _job_or_404(session, job_id=job_id)
    row = await session.scalar(
        select(Artifact)
        .where(Artifact.job_id == job_id, Artifact.path == path)
        .order_by(Artifact.attempt.desc())
        .limit(1)
    )
    if row is None:
        raise errors.NotFound(f"job {job_id} has no artifact {path!r}; see its artifact list")
    return await store.presign_get(
        row.key, expires_s=DOWNLOAD_URL_SECONDS, filename=PurePosixPath(row.path).name
    )
