"""The bearer token is checked before the body is read.

FastAPI reads and parses a JSON body before it runs a route's dependencies, so without this
layer an anonymous client could make HQ read (and hold) a body of any size before its 401. The
gate checks the token from the headers alone (``deps.principal_for``: the in-process cache, the
database only on a miss) and keeps the answer in the scope, where ``deps.get_principal`` finds
it: no second lookup. Only the public routes pass ungated: health, the API docs, and the signed
storage URLs, whose signature is their authority.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import DBAPIError
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from hq import errors
from hq.server import deps
from hq.server.edge import handlers
from hq.server.edge.docs import DOCS_PATHS, STATIC_PREFIX
from hq.server.storage.local import STORAGE_ROUTE_PREFIX

logger = logging.getLogger(__name__)

PUBLIC_PATHS = frozenset({"/api/v1/health", *DOCS_PATHS})
PUBLIC_PREFIXES = (f"{STORAGE_ROUTE_PREFIX}/", STATIC_PREFIX)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer`` header, as ``fastapi.security.HTTPBearer``
    reads it."""
    value = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
    scheme, _, token = value.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class TokenGate:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_public(scope["path"]):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        try:
            token = bearer_token(scope)
            if token is None:
                raise errors.NotAuthenticated()
            scope[deps.PRINCIPAL_KEY] = await deps.principal_for(request, token)
        except errors.HQError as exc:
            response = await handlers.hq_error(request, exc)
        except DBAPIError as exc:
            response = await handlers.database_error(request, exc)
        else:
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)
