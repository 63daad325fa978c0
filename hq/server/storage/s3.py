"""The S3 object store through the minio SDK: any S3 endpoint (MinIO in compose).

The SDK blocks, so every call runs in a worker thread (``asyncio.to_thread``). Presigned URLs are
signed locally (no round trip) and always carry an explicit ``expires=``: the SDK's default is
seven days. ``public_endpoint`` signs URLs for the address agents use when it differs from the one
HQ uses (e.g. ``http://minio:9000`` inside compose, ``http://hq-host:9000`` outside).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import urllib3
from minio import Minio
from minio.commonconfig import CopySource
from minio.error import S3Error
from minio.helpers import check_bucket_name

from hq import errors
from hq.server.storage import (
    CHUNK_BYTES,
    DEFAULT_PRESIGN_SECONDS,
    ObjectInfo,
    ObjectStore,
    check_expiry,
    check_key,
)

logger = logging.getLogger(__name__)

_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "NotFound", "ResourceNotFound"})
_BUCKET_RACE_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})
_TIMEOUT_SECONDS = 30.0


def _client(*, endpoint: str, access_key: str | None, secret_key: str | None, region: str) -> Minio:
    parts = urlsplit(endpoint if "://" in endpoint else f"http://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise errors.ValidationFailed(f"S3 endpoint {endpoint!r}: use http(s)://host:port")
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=_TIMEOUT_SECONDS),
        retries=urllib3.Retry(total=3, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
        maxsize=16,
    )
    return Minio(
        parts.netloc,
        access_key=access_key,
        secret_key=secret_key,
        secure=parts.scheme == "https",
        region=region,
        http_client=http,
    )


class S3Store(ObjectStore):
    """Objects in one bucket, under an optional key prefix."""

    kind = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint: str,
        access_key: str | None,
        secret_key: str | None,
        region: str = "us-east-1",
        prefix: str = "",
        public_endpoint: str | None = None,
    ) -> None:
        try:
            check_bucket_name(bucket, strict=True)
        except ValueError:
            raise errors.ValidationFailed(
                f"invalid S3 bucket name {bucket!r}: 3-63 lowercase letters, digits, '.' or '-'"
            ) from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint = endpoint
        self._client = _client(
            endpoint=endpoint, access_key=access_key, secret_key=secret_key, region=region
        )
        self._signer = (
            _client(
                endpoint=public_endpoint,
                access_key=access_key,
                secret_key=secret_key,
                region=region,
            )
            if public_endpoint
            else self._client
        )
        self._bucket_ready = False

    def _name(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Run one blocking SDK call in a thread; connection failures become Unavailable."""
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.Unavailable(f"S3 at {self.endpoint} is unreachable: {exc}") from exc
        except S3Error as exc:
            if exc.code in _MISSING_CODES or exc.code in _BUCKET_RACE_CODES:
                raise  # the caller decides what a missing object means
            logger.warning(
                "S3 refused %s: %s %s", getattr(fn, "__name__", fn), exc.code, exc.message
            )
            raise errors.Unavailable(
                f"S3 at {self.endpoint} refused the request ({exc.code}): check the bucket "
                "and the HQ_S3_ACCESS_KEY/HQ_S3_SECRET_KEY credentials"
            ) from exc

    async def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (once per process)."""
        if self._bucket_ready:
            return
        if not await self._call(self._client.bucket_exists, self.bucket):
            try:
                await self._call(self._client.make_bucket, self.bucket)
                logger.info("created bucket %s", self.bucket, extra={"bucket": self.bucket})
            except S3Error as exc:
                if exc.code not in _BUCKET_RACE_CODES:
                    raise
        self._bucket_ready = True

    # -- reads -------------------------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo | None:
        await self.ensure_bucket()
        try:
            st = await self._call(self._client.stat_object, self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                return None
            raise
        return ObjectInfo(key=key, size=int(st.size or 0), content_type=st.content_type)

    async def _get(self, key: str) -> Any:
        await self.ensure_bucket()
        try:
            return await self._call(self._client.get_object, self.bucket, self._name(key))
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise errors.NotFound(f"no object {key!r} in the store") from None
            raise

    async def open_stream(
        self, key: str, *, chunk_bytes: int = CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        response = await self._get(key)
        try:
            while chunk := await self._call(response.read, chunk_bytes):
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def sha256(self, key: str) -> str:
        response = await self._get(key)

        def _hash() -> str:
            digest = hashlib.sha256()
            for chunk in response.stream(CHUNK_BYTES):
                digest.update(chunk)
            return digest.hexdigest()

        try:
            return str(await self._call(_hash))
        finally:
            response.close()
            response.release_conn()

    async def get_file(self, key: str, dest: Path) -> None:
        response = await self._get(key)

        def _write() -> None:
            with dest.open("wb") as fh:
                for chunk in response.stream(CHUNK_BYTES):
                    fh.write(chunk)

        try:
            await self._call(_write)
        finally:
            response.close()
            response.release_conn()

    # -- writes ------------------------------------------------------------------------------
    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> None:
        await self.ensure_bucket()
        await self._call(
            self._client.fput_object,
            self.bucket,
            self._name(key),
            str(path),
            content_type=content_type,
            num_parallel_uploads=1,
        )

    async def put_bytes(self, key: str, data: bytes) -> None:
        await self.ensure_bucket()
        await self._call(
            self._client.put_object, self.bucket, self._name(key), io.BytesIO(data), len(data)
        )

    async def copy(self, src: str, dst: str) -> None:
        await self.ensure_bucket()
        try:
            await self._call(
                self._client.copy_object,
                self.bucket,
                self._name(dst),
                CopySource(self.bucket, self._name(src)),
            )
        except S3Error as exc:
            if exc.code in _MISSING_CODES:
                raise errors.NotFound(f"no object {src!r} in the store") from None
            raise

    async def delete(self, key: str) -> None:
        await self.ensure_bucket()
        await self._call(self._client.remove_object, self.bucket, self._name(key))

    # -- URLs --------------------------------------------------------------------------------
    async def presign_get(
        self, key: str, *, expires_s: int = DEFAULT_PRESIGN_SECONDS, filename: str | None = None
    ) -> str:
        expires = timedelta(seconds=check_expiry(expires_s))
        headers = None
        if filename:
            disposition = f"attachment; filename*=UTF-8''{quote(filename, safe='')}"
            headers = {"response-content-disposition": disposition}
        url = await self._call(
            self._signer.presigned_get_object,
            self.bucket,
            self._name(key),
            expires=expires,
            response_headers=headers,
        )
        return str(url)

    async def presign_put(self, key: str, *, expires_s: int = DEFAULT_PRESIGN_SECONDS) -> str:
        expires = timedelta(seconds=check_expiry(expires_s))
        await self.ensure_bucket()  # a PUT URL into a missing bucket would only fail later
        url = await self._call(
            self._signer.presigned_put_object, self.bucket, self._name(key), expires=expires
        )
        return str(url)

    async def check(self) -> None:
        """Ask the server each time (a cached answer would hide an outage from /health)."""
        try:
            exists = await self._call(self._client.bucket_exists, self.bucket)
        except S3Error as exc:
            raise errors.Unavailable(f"S3 bucket {self.bucket!r}: {exc.code}") from exc
        if not exists:
            self._bucket_ready = False
            try:
                await self.ensure_bucket()
            except S3Error as exc:
                raise errors.Unavailable(f"S3 bucket {self.bucket!r}: {exc.code}") from exc
