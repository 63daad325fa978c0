"""The local-folder object store: the embedded default, one machine, no S3 server.

HQ itself serves its presigned URLs (``GET``/``PUT /storage/{key}``, see hq/server/api/storage.py):
``{public_url}/storage/{key}?expires=<unix>&sig=<hmac>``, where the HMAC-SHA256 covers the method,
the key, the expiry and the download filename. The signature is the only authority a URL carries,
so agents need no token and no storage credentials, exactly as with S3. Writes go to a temporary
file beside the target and are renamed into place, so a reader never sees half an object.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from hq import errors
from hq.server.storage import (
    CHUNK_BYTES,
    DEFAULT_PRESIGN_SECONDS,
    MAX_PRESIGN_SECONDS,
    ObjectInfo,
    ObjectStore,
    check_expiry,
    check_key,
)

logger = logging.getLogger(__name__)

STORAGE_ROUTE_PREFIX = "/storage"


class LocalStore(ObjectStore):
    """Objects are files under ``root``; keys map to relative paths."""

    kind = "file"

    def __init__(
        self, *, root: Path, public_url: str, secret_key: str, max_put_bytes: int | None = None
    ) -> None:
        self.root = root
        self.public_url = public_url.rstrip("/")
        self._secret = secret_key.encode()
        self.max_put_bytes = max_put_bytes
        self.root.mkdir(parents=True, exist_ok=True)

    # -- paths -------------------------------------------------------------------------------
    def path_for(self, key: str) -> Path:
        """The file behind ``key``, refusing any key that would leave ``root``."""
        check_key(key)
        path = self.root / key
        root = self.root.resolve()
        if not path.resolve().is_relative_to(root):
            raise errors.ValidationFailed(f"key {key!r} leaves the storage folder", field="key")
        return path

    def _temp_beside(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")

    # -- signing -----------------------------------------------------------------------------
    def _signature(self, *, method: str, key: str, expires: int, filename: str | None) -> str:
        message = f"{method.upper()}\n{key}\n{expires}\n{filename or ''}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def _sign(self, *, method: str, key: str, expires_s: int, filename: str | None) -> str:
        check_key(key)
        expires = int(time.time()) + check_expiry(expires_s)
        query: dict[str, str] = {"expires": str(expires)}
        if filename:
            query["filename"] = filename
        query["sig"] = self._signature(method=method, key=key, expires=expires, filename=filename)
        return f"{self.public_url}{STORAGE_ROUTE_PREFIX}/{quote(key)}?{urlencode(query)}"

    def verify(
        self,
        *,
        method: str,
        key: str,
        expires: str | None,
        sig: str | None,
        filename: str | None = None,
        now: float | None = None,
    ) -> None:
        """Accept a signed request, or raise Forbidden saying why (expired, bad signature)."""
        if not expires or not sig:
            raise errors.Forbidden("this storage URL is not signed: ask HQ for a presigned URL")
        try:
            expires_at = int(expires)
        except ValueError:
            raise errors.Forbidden("this storage URL has an invalid expiry") from None
        expected = self._signature(method=method, key=key, expires=expires_at, filename=filename)
        if not hmac.compare_digest(expected, sig):
            raise errors.Forbidden("this storage URL's signature does not match")
        if (time.time() if now is None else now) > expires_at:
            raise errors.Forbidden("this storage URL has expired: ask HQ for a new one")
        if expires_at - (time.time() if now is None else now) > MAX_PRESIGN_SECONDS + 60:
            raise errors.Forbidden("this storage URL's expiry is too far in the future")

    async def presign_get(
        self, key: str, *, expires_s: int = DEFAULT_PRESIGN_SECONDS, filename: str | None = None
    ) -> str:
        return self._sign(method="GET", key=key, expires_s=expires_s, filename=filename)

    async def presign_put(self, key: str, *, expires_s: int = DEFAULT_PRESIGN_SECONDS) -> str:
        return self._sign(method="PUT", key=key, expires_s=expires_s, filename=None)

    # -- reads -------------------------------------------------------------------------------
    async def stat(self, key: str) -> ObjectInfo | None:
        path = self.path_for(key)
        try:
            st = await asyncio.to_thread(path.stat)
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        return ObjectInfo(key=key, size=st.st_size)

    async def open_stream(
        self, key: str, *, chunk_bytes: int = CHUNK_BYTES
    ) -> AsyncIterator[bytes]:
        path = self.path_for(key)
        try:
            fh: BinaryIO = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, IsADirectoryError):
            raise errors.NotFound(f"no object {key!r} in the store") from None
        try:
            while chunk := await asyncio.to_thread(fh.read, chunk_bytes):
                yield chunk
        finally:
            fh.close()

    async def sha256(self, key: str) -> str:
        path = self.path_for(key)

        def _hash() -> str:
            digest = hashlib.sha256()
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK_BYTES):
                    digest.update(chunk)
            return digest.hexdigest()

        try:
            return await asyncio.to_thread(_hash)
        except (FileNotFoundError, IsADirectoryError):
            raise errors.NotFound(f"no object {key!r} in the store") from None

    async def get_file(self, key: str, dest: Path) -> None:
        path = self.path_for(key)
        try:
            await asyncio.to_thread(shutil.copyfile, path, dest)
        except (FileNotFoundError, IsADirectoryError):
            raise errors.NotFound(f"no object {key!r} in the store") from None

    # -- writes ------------------------------------------------------------------------------
    async def put_file(
        self, key: str, path: Path, *, content_type: str = "application/octet-stream"
    ) -> None:
        target = self.path_for(key)

        def _put() -> None:
            tmp = self._temp_beside(target)
            try:
                try:  # same filesystem (HQ's spool folder): a hard link instead of a copy
                    os.link(path, tmp)
                except OSError:
                    shutil.copyfile(path, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

        await asyncio.to_thread(_put)

    async def put_bytes(self, key: str, data: bytes) -> None:
        target = self.path_for(key)

        def _put() -> None:
            tmp = self._temp_beside(target)
            try:
                tmp.write_bytes(data)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

        await asyncio.to_thread(_put)

    async def write_stream(self, key: str, chunks: AsyncIterator[bytes]) -> int:
        """Write a streamed body to ``key`` atomically; refuse past ``max_put_bytes``.

        Used by the signed PUT route. An interrupted or oversized body leaves nothing behind.
        """
        target = self.path_for(key)
        tmp = await asyncio.to_thread(self._temp_beside, target)
        size = 0
        fh: BinaryIO = await asyncio.to_thread(tmp.open, "wb")
        try:
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    if self.max_put_bytes is not None and size > self.max_put_bytes:
                        raise errors.PayloadTooLarge(
                            f"the upload is larger than this server's limit of "
                            f"{self.max_put_bytes} bytes"
                        )
                    await asyncio.to_thread(fh.write, chunk)
            finally:
                fh.close()
            await asyncio.to_thread(os.replace, tmp, target)
        finally:
            await asyncio.to_thread(tmp.unlink, True)
        return size

    async def copy(self, src: str, dst: str) -> None:
        source, target = self.path_for(src), self.path_for(dst)

        def _copy() -> None:
            if not source.is_file():
                raise errors.NotFound(f"no object {src!r} in the store")
            tmp = self._temp_beside(target)
            try:
                try:  # every write here renames a new file into place, never edits one, so a
                    os.link(source, tmp)  # hard link is a snapshot no later write can change
                except OSError:
                    shutil.copyfile(source, tmp)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

        await asyncio.to_thread(_copy)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self.path_for(key).unlink, True)

    async def check(self) -> None:
        def _probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / f".health.{uuid.uuid4().hex}"
            probe.write_bytes(b"ok")
            probe.unlink()

        try:
            await asyncio.to_thread(_probe)
        except OSError as exc:
            raise errors.Unavailable(f"storage folder {self.root} is not writable: {exc}") from exc
