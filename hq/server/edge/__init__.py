"""HQ's HTTP edge: what every request passes before a route sees it, and what every error looks
like on the way out.

Order, outermost first: ``RequestContext`` (a request id on every answer; an unhandled error
becomes HQ's JSON 500), ``TokenGate`` (the bearer token is checked before a byte of the body is
read), ``BodyLimit`` (JSON bodies past HQ_MAX_BODY_BYTES are cut off with 413). Then FastAPI,
with the error handlers of ``handlers``, the offline docs of ``docs`` and the error statuses
that ``openapi`` adds to every route.
"""

from __future__ import annotations

from fastapi import FastAPI

from hq.server.edge import docs, handlers, openapi
from hq.server.edge.context import RequestContext
from hq.server.edge.gate import TokenGate
from hq.server.edge.limit import BodyLimit
from hq.server.settings import ServerSettings


def install(app: FastAPI, settings: ServerSettings) -> None:
    """Add the edge to ``app`` (after its routers, which ``openapi`` documents)."""
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(TokenGate)
    app.add_middleware(RequestContext)
    handlers.install(app)
    docs.install(app)
    openapi.document_errors(app)
