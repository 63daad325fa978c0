"""A request id on every answer, and HQ's error shape for the errors nothing else handled.

The id is the caller's ``X-Request-ID`` when it is a short token of safe characters, else a new
one; it goes back in the ``X-Request-ID`` header of every response and into the log line of any
failure, so a user's report can be matched to the server's traceback. An exception that reaches
this layer is logged once with that id and answered ``{code: "internal", message, request_id}``
(Starlette's own fallback would answer plain text). A client that hangs up mid-body is not an
error of HQ's: one log line, no traceback.
"""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hq import errors

logger = logging.getLogger(__name__)

HEADER = "X-Request-ID"
SCOPE_KEY = "hq.request_id"
_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def request_id(scope: Scope) -> str:
    """The id of the request ``scope`` belongs to ('-' outside ``RequestContext``)."""
    return str(scope.get(SCOPE_KEY, "-"))


def internal_body(scope: Scope) -> dict[str, Any]:
    rid = request_id(scope)
    err = errors.HQError(f"HQ failed to handle the request; quote request id {rid} to report it")
    return {**err.to_body(), "request_id": rid}


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(HEADER.lower().encode(), b"").decode("latin-1")
        rid = given if _SAFE_ID.fullmatch(given) else uuid.uuid4().hex
        scope[SCOPE_KEY] = rid
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[HEADER] = rid
            await send(message)

        where = f"{scope.get('method')} {scope.get('path')}"
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            logger.warning(
                "%s: cut off by its client before the body was complete (request %s); "
                "nothing was kept",
                where,
                rid,
            )
        except Exception:
            logger.exception("%s failed (request %s)", where, rid)
            if not started:
                response = JSONResponse(internal_body(scope), status_code=500)
                await response(scope, receive, send_with_id)
