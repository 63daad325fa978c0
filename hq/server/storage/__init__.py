"""The object-store port: one async interface over S3 (minio SDK) and a local folder.

Services talk only to ``ObjectStore``; ``make_store`` picks the adapter from ``HQ_STORAGE_URL``:
``file:///abs/path`` (the embedded default; HQ serves its own HMAC-signed URLs) or
``s3://bucket[/prefix]?endpoint=http://host:9000[&region=..][&public_endpoint=..]`` (any S3
server; MinIO in compose). Every presigned URL carries an explicit expiry of at most
``MAX_PRESIGN_SECONDS``, so a leaked URL dies within 15 minutes.
"""

from __future__ import annotations

import abc
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from hq import errors
from hq.schemas.common import SHA256_RE

MAX_PRESIGN_SECONDS = 900
DEFAULT_PRESIGN_SECONDS = 900
CHUNK_BYTES = 1024 * 1024
MAX_KEY_CHARS = 1024
MAX_SEGMENT_BYTES = 255
_PERCENT_ESCAPE_RE = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class ObjectInfo:
    """What the store knows about one object without reading it."""

    key: str
    size: int
    content_type: str | None = None


class ObjectStore(abc.ABC):
    """Async object storage. Keys are '/'-separated relative paths checked by ``check_key``."""

    kind: str = "abstract"

    @abc.abstractmethod
    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> None:
        """Store the file at ``path`` under ``key`` (streamed, never whole in memory)."""

    @abc.abstractmethod
    async def put_bytes(self, key: str, data: bytes) -> None:
        """Store ``data`` (small: it is whole in memory) under ``key``, all or nothing."""

    @abc.abstractmethod
    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and type of ``key``, or None when it does not exist."""

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    @abc.abstractmethod
    def open_stream(self, key: str, *, chunk_bytes: int = CHUNK_BYTES) -> AsyncIterator[bytes]:
        """Yield the object's bytes in chunks; raises NotFound if it does not exist."""

    async def read_bytes(self, key: str, *, limit: int) -> bytes:
        """At most ``limit`` bytes from the start of ``key`` (for previews)."""
        out = bytearray()
        async for chunk in self.open_stream(key, chunk_bytes=min(CHUNK_BYTES, max(limit, 1))):
            out.extend(chunk[: limit - len(out)])
            if len(out) >= limit:
                break
        return bytes(out)

    @abc.abstractmethod
    async def sha256(self, key: str) -> str:
        """The hex sha256 of the object, computed by streaming it; NotFound if absent."""

    @abc.abstractmethod
    async def get_file(self, key: str, dest: Path) -> None:
        """Download ``key`` to ``dest`` (streamed); NotFound if absent."""

    @abc.abstractmethod
    async def copy(self, src: str, dst: str) -> None:
        """Copy one object to another key inside the store (server-side where possible)."""

    @abc.abstractmethod
    async def presign_get(
        self, key: str, *, expires_s: int = DEFAULT_PRESIGN_SECONDS, filename: str | None = None
    ) -> str:
        """A URL that GETs ``key`` without other credentials until it expires."""

    @abc.abstractmethod
    async def presign_put(self, key: str, *, expires_s: int = DEFAULT_PRESIGN_SECONDS) -> str:
        """A URL that PUTs ``key`` without other credentials until it expires."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key``; a missing key is not an error."""

    @abc.abstractmethod
    async def check(self) -> None:
        """Raise ``Unavailable`` when the store cannot be used (for /health)."""

    async def close(self) -> None:  # noqa: B027 - optional hook, most adapters hold nothing
        """Release connections; the default holds none."""


def check_expiry(expires_s: int) -> int:
    """Refuse expiries outside (0, 15 minutes]: no URL may outlive that."""
    if not 0 < expires_s <= MAX_PRESIGN_SECONDS:
        raise errors.ValidationFailed(
            f"presigned URL expiry must be 1..{MAX_PRESIGN_SECONDS} seconds, got {expires_s}"
        )
    return expires_s


def check_relative_path(path: str, *, what: str = "path") -> str:
    """Refuse a path that could escape its folder or means something else once decoded.

    No absolute paths, no backslashes, no '.' or '..' or empty segments, no control characters,
    no percent-escapes (``%2e%2e`` would decode to '..'), and the same checks again after Unicode
    compatibility normalisation (fullwidth dots fold to '.').
    """
    if not path:
        raise errors.ValidationFailed(f"{what} is empty", field=what)
    if len(path) > MAX_KEY_CHARS:
        raise errors.ValidationFailed(
            f"{what} is longer than {MAX_KEY_CHARS} characters", field=what
        )
    if _PERCENT_ESCAPE_RE.search(path) or unquote(path) != path:
        raise errors.ValidationFailed(f"{what} {path!r} contains a percent-escape", field=what)
    for form in (path, unicodedata.normalize("NFKC", path)):
        if "\\" in form:
            raise errors.ValidationFailed(f"{what} {path!r} contains a backslash", field=what)
        if any(unicodedata.category(c) in ("Cc", "Cf") for c in form):
            raise errors.ValidationFailed(
                f"{what} {path!r} contains a control character", field=what
            )
        if form.startswith("/") or re.match(r"^[A-Za-z]:", form):
            raise errors.ValidationFailed(
                f"{what} {path!r} is absolute; give a relative path", field=what
            )
        for segment in form.split("/"):
            if segment in ("", ".", ".."):
                raise errors.ValidationFailed(
                    f"{what} {path!r} has an empty, '.' or '..' segment", field=what
                )
            if len(segment.encode()) > MAX_SEGMENT_BYTES:
                raise errors.ValidationFailed(
                    f"{what} {path!r} has a segment longer than {MAX_SEGMENT_BYTES} bytes",
                    field=what,
                )
    return path


def check_key(key: str) -> str:
    """Object keys follow the same rules as artifact paths."""
    return check_relative_path(key, what="key")


def dataset_key(sha256: str) -> str:
    """Datasets are content-addressed: the same bytes always land on the same key."""
    if not SHA256_RE.fullmatch(sha256):
        raise errors.ValidationFailed(f"not a sha256 hex digest: {sha256!r}")
    return f"datasets/sha256/{sha256}"


def blob_key(sha256: str) -> str:
    """Accepted artifacts are content-addressed too. Only HQ writes here, and only bytes it has
    hashed to ``sha256``: no presigned URL ever names a blob, so what a download or a promotion
    reads cannot change after ``complete`` accepted it."""
    if not SHA256_RE.fullmatch(sha256):
        raise errors.ValidationFailed(f"not a sha256 hex digest: {sha256!r}")
    return f"blobs/sha256/{sha256}"


def staging_key() -> str:
    """A fresh private key: a snapshot of an upload while HQ hashes it (no URL names it)."""
    return f"staging/{uuid.uuid4().hex}"


def artifact_key(job_id: str, attempt: int, path: str) -> str:
    """Where an agent uploads an artifact: scoped to the job and the attempt that writes it.
    Writable through a presigned PUT URL for 15 minutes, so never read once accepted: ``complete``
    copies it to its ``blob_key``."""
    check_relative_path(job_id, what="job_id")
    check_relative_path(path, what="artifact path")
    if "/" in job_id:
        raise errors.ValidationFailed(f"invalid job id {job_id!r}")
    return f"artifacts/{job_id}/{int(attempt)}/{path}"


def make_store(
    *,
    url: str,
    public_url: str = "http://127.0.0.1:8080",
    secret_key: str | None = None,
    s3_access_key: str | None = None,
    s3_secret_key: str | None = None,
    s3_region: str | None = None,
    max_put_bytes: int | None = None,
) -> ObjectStore:
    """The adapter for ``url``: ``file:///...`` or ``s3://bucket?endpoint=...``."""
    parts = urlsplit(url)
    if parts.scheme == "file":
        from hq.server.storage.local import LocalStore

        if not secret_key:
            raise errors.ValidationFailed("the folder store needs a secret_key to sign URLs")
        root = Path(unquote(parts.path))
        if parts.netloc not in ("", "localhost") or not root.is_absolute():
            raise errors.ValidationFailed(f"HQ_STORAGE_URL {url!r}: use file:///absolute/path")
        return LocalStore(
            root=root, public_url=public_url, secret_key=secret_key, max_put_bytes=max_put_bytes
        )
    if parts.scheme == "s3":
        from hq.server.storage.s3 import S3Store

        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        if not parts.netloc:
            raise errors.ValidationFailed(f"HQ_STORAGE_URL {url!r}: s3:// needs a bucket name")
        endpoint = query.get("endpoint")
        if not endpoint:
            raise errors.ValidationFailed(
                f"HQ_STORAGE_URL {url!r}: add ?endpoint=http(s)://host:port"
            )
        return S3Store(
            bucket=parts.netloc,
            prefix=parts.path.strip("/"),
            endpoint=endpoint,
            public_endpoint=query.get("public_endpoint"),
            access_key=s3_access_key,
            secret_key=s3_secret_key,
            region=query.get("region") or s3_region or "us-east-1",
        )
    raise errors.ValidationFailed(f"HQ_STORAGE_URL {url!r}: the scheme must be file:// or s3://")


__all__ = [
    "MAX_PRESIGN_SECONDS",
    "ObjectInfo",
    "ObjectStore",
    "artifact_key",
    "blob_key",
    "check_expiry",
    "check_key",
    "check_relative_path",
    "dataset_key",
    "make_store",
    "staging_key",
]
