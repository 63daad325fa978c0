"""Request bodies past HQ_MAX_BODY_BYTES are refused with 413 while they stream, never read whole.

Every route takes JSON under this limit but two: the streamed multipart upload of a dataset
version (``POST /api/v1/datasets/{name}/versions``, which streams to a file under its own limit,
HQ_MAX_UPLOAD_BYTES) and the signed storage URLs (the same limit, checked by the store).
Everything else, including ``POST /api/v1/datasets/{name}/promote``, is held to this one.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hq import errors
from hq.server.storage.local import STORAGE_ROUTE_PREFIX

STREAMED_ROUTES = ((frozenset({"POST"}), re.compile(r"/api/v1/datasets/[^/]+/versions")),)


def is_streamed(method: str, path: str) -> bool:
    """Whether ``method path`` is one of the routes that stream their body under another limit."""
    if path.startswith(f"{STORAGE_ROUTE_PREFIX}/"):
        return True
    return any(method in methods and rx.fullmatch(path) for methods, rx in STREAMED_ROUTES)


def too_large_text(max_bytes: int) -> str:
    return f"the request body is over {max_bytes} bytes; send less (datasets: upload as a file)"


class BodyLimit:
    """Counts what actually arrives. A declared Content-Length over the limit is refused before
    any of the body is read. A body without one (chunked) is read up to the limit before the app
    sees it: an error raised while FastAPI reads the body would come out as its generic 400."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_streamed(scope["method"], scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await self._too_large(scope, send)
                return
            await self.app(scope, receive, send)  # the HTTP server holds the body to its length
            return
        buffered: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            buffered.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._too_large(scope, send)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        err = errors.PayloadTooLarge(too_large_text(self.max_bytes))
        # The rest of the body is never read: the server closes the connection after this.
        response = JSONResponse(err.to_body(), status_code=413, headers={"Connection": "close"})
        await response(scope, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}
