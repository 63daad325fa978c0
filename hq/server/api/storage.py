"""The folder store's presigned URLs, served by HQ itself: ``GET``/``PUT /storage/{key}``.

These routes take no bearer token: the HMAC signature and expiry in the query string are the
authority, as with S3's presigned URLs. With an S3 store they answer 404.
"""

from __future__ import annotations

import mimetypes
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse

from hq import errors
from hq.schemas.common import is_number
from hq.server.deps import StoreDep
from hq.server.storage import ObjectStore
from hq.server.storage.local import STORAGE_ROUTE_PREFIX, LocalStore

router = APIRouter(prefix=STORAGE_ROUTE_PREFIX, tags=["storage"], include_in_schema=False)


def _local(store: ObjectStore) -> LocalStore:
    if not isinstance(store, LocalStore):
        raise errors.NotFound("this server's object store serves its own URLs")
    return store


@router.get("/{key:path}")
async def get_object(
    key: str,
    store: StoreDep,
    expires: Annotated[str | None, Query()] = None,
    sig: Annotated[str | None, Query()] = None,
    filename: Annotated[str | None, Query()] = None,
) -> FileResponse:
    """Stream one object to the holder of a signed, unexpired GET URL."""
    local = _local(store)
    local.verify(method="GET", key=key, expires=expires, sig=sig, filename=filename)
    path = local.path_for(key)
    if not path.is_file():
        raise errors.NotFound(f"no object {key!r} in the store")
    media_type = (mimetypes.guess_type(filename or key)[0]) or "application/octet-stream"
    return FileResponse(
        path, media_type=media_type, filename=filename, content_disposition_type="attachment"
    )


@router.put("/{key:path}")
async def put_object(
    request: Request,
    key: str,
    store: StoreDep,
    expires: Annotated[str | None, Query()] = None,
    sig: Annotated[str | None, Query()] = None,
) -> Response:
    """Receive one object from the holder of a signed, unexpired PUT URL (streamed, atomic)."""
    local = _local(store)
    local.verify(method="PUT", key=key, expires=expires, sig=sig)
    declared = request.headers.get("content-length")
    if declared is not None and local.max_put_bytes is not None:
        if not is_number(declared):
            raise errors.BadRequest("Content-Length must be a number")
        if int(declared) > local.max_put_bytes:
            raise errors.PayloadTooLarge(
                f"the upload ({declared} bytes) is larger than this server's limit of "
                f"{local.max_put_bytes} bytes"
            )
    size = await local.write_stream(key, request.stream())
    return Response(status_code=200, headers={"x-hq-size": str(size)})
