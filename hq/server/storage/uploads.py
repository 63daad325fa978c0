"""Receive a multipart upload as a stream: to a temporary file, hashed on the way, size-capped.

FastAPI's ``UploadFile`` would spool the whole body before the route runs, so a too-large upload
would be read in full before it could be refused. Here the body is parsed chunk by chunk (with
python-multipart's streaming parser), the ``file`` part goes straight to a temporary file under
HQ's home while its sha256 and size are computed, and the size limit stops the transfer as soon as
it is crossed. Nothing of an upload that fails (too large, cut off, malformed) is left behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header

from hq import errors

logger = logging.getLogger(__name__)

FILE_FIELD = "file"
STALE_SPOOL_SECONDS = 24 * 3600
MAX_FILENAME_CHARS = 255


@dataclass
class ReceivedFile:
    """An upload that arrived whole: a temporary file the caller must ``discard()``."""

    path: Path
    filename: str
    content_type: str
    size: int
    sha256: str

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


@dataclass
class _State:
    """What the parser callbacks build up while the body streams in."""

    out: BinaryIO
    max_bytes: int
    digest: hashlib._Hash = field(default_factory=hashlib.sha256)
    size: int = 0
    header_field: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    headers: dict[str, bytes] = field(default_factory=dict)
    in_file: bool = False
    files_seen: int = 0
    filename: str | None = None
    part_type: str = "application/octet-stream"
    ended: bool = False


def _clean_filename(raw: bytes) -> str:
    """Keep only the last path segment of a client-sent filename, printable and bounded."""
    name = raw.decode("utf-8", errors="replace").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()
    if name in ("", ".", ".."):
        name = "upload"
    return name[-MAX_FILENAME_CHARS:]


def _parser(state: _State, boundary: bytes) -> MultipartParser:
    def on_part_begin() -> None:
        state.headers.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value.extend(data[start:end])

    def on_header_end() -> None:
        state.headers[state.header_field.decode("latin-1").lower()] = bytes(state.header_value)
        state.header_field.clear()
        state.header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(state.headers.get("content-disposition"))
        state.in_file = options.get(b"name") == FILE_FIELD.encode()
        if state.in_file:
            state.files_seen += 1
            if state.files_seen > 1:
                raise errors.BadRequest("send exactly one multipart field named 'file'")
            state.filename = _clean_filename(options.get(b"filename") or b"upload")
            ctype = state.headers.get("content-type", b"").decode("latin-1").strip()
            state.part_type = ctype[:128] or "application/octet-stream"

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if not state.in_file:
            return
        state.size += end - start
        if state.size > state.max_bytes:
            raise errors.PayloadTooLarge(
                f"the file is larger than this server's upload limit of {state.max_bytes} bytes "
                "(HQ_MAX_UPLOAD_BYTES)"
            )
        chunk = data[start:end]
        state.digest.update(chunk)
        state.out.write(chunk)

    def on_part_end() -> None:
        state.in_file = False

    def on_end() -> None:
        state.ended = True

    callbacks = {
        "on_part_begin": on_part_begin,
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished,
        "on_part_data": on_part_data,
        "on_part_end": on_part_end,
        "on_end": on_end,
    }
    return MultipartParser(boundary, callbacks)  # type: ignore[arg-type]


async def receive_multipart_file(
    *, chunks: AsyncIterator[bytes], content_type: str | None, spool_dir: Path, max_bytes: int
) -> ReceivedFile:
    """Stream the ``file`` field of a multipart body to a temporary file under ``spool_dir``.

    Raises BadRequest for a body that is not multipart, has no ``file`` field or ends early, and
    PayloadTooLarge past ``max_bytes``; in every failure the temporary file is removed.
    """
    mime, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise errors.BadRequest(
            "send the file as multipart/form-data with a field named 'file' "
            "(e.g. curl -F file=@data.csv)"
        )
    await asyncio.to_thread(spool_dir.mkdir, parents=True, exist_ok=True)
    await asyncio.to_thread(sweep_stale, spool_dir)
    path = spool_dir / f"upload-{uuid.uuid4().hex}.part"
    out: BinaryIO = await asyncio.to_thread(path.open, "wb")
    state = _State(out=out, max_bytes=max_bytes)
    parser = _parser(state, boundary)
    ok = False
    try:
        try:
            async for chunk in chunks:
                if chunk:
                    await asyncio.to_thread(parser.write, chunk)
            if not state.ended:
                raise errors.BadRequest("the upload ended before the multipart body was complete")
        except errors.HQError:
            raise
        except Exception as exc:  # a malformed body or a dropped connection
            if type(exc).__name__ == "ClientDisconnect":  # starlette's, not an app error
                logger.info("upload interrupted by the client; nothing kept")
                raise errors.BadRequest("the upload was interrupted; nothing was kept") from exc
            raise errors.BadRequest(f"the multipart body could not be read: {exc}") from exc
        finally:
            await asyncio.to_thread(out.close)
        if state.files_seen == 0 or state.filename is None:
            raise errors.BadRequest("the multipart body has no field named 'file'")
        ok = True
        return ReceivedFile(
            path=path,
            filename=state.filename,
            content_type=state.part_type,
            size=state.size,
            sha256=state.digest.hexdigest(),
        )
    finally:
        if not ok:
            await asyncio.to_thread(_remove, path)


def sweep_stale(spool_dir: Path, *, max_age_s: float = STALE_SPOOL_SECONDS) -> int:
    """Remove spool files left by a server that died mid-upload (older than ``max_age_s``)."""
    cutoff = time.time() - max_age_s
    removed = 0
    for path in spool_dir.glob("*.part"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
