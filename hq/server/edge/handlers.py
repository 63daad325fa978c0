"""One place maps errors to status codes and HQ's error shape (``hq.client`` maps them back to
``hq.errors`` classes): HQ's own errors, Starlette's (no such route), FastAPI's validation and
body-parsing errors, and the database's."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect

from hq import errors
from hq.server.db.errors import is_retryable
from hq.server.edge.context import internal_body

logger = logging.getLogger(__name__)

# Where a request value came from; not part of the field name an error reports.
LOCATIONS = ("body", "query", "path", "header", "cookie")
JSON_TYPES = ("application/json",)


def install(app: FastAPI) -> None:
    app.exception_handler(errors.HQError)(hq_error)
    app.exception_handler(StarletteHTTPException)(http_error)
    app.exception_handler(RequestValidationError)(validation_error)
    app.exception_handler(DBAPIError)(database_error)
    app.exception_handler(PoolTimeout)(database_error)  # no free connection: 503 as well


async def hq_error(request: Request, exc: errors.HQError) -> JSONResponse:
    if exc.status_code >= 500 and not isinstance(exc, errors.Unavailable):
        return JSONResponse(internal_body(request.scope), status_code=500)
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=headers)


async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own answers (no such route, method not allowed) and FastAPI's body-parsing
    400 in HQ's error shape, each saying what to do."""
    where = f"{request.method} {request.url.path}"
    if exc.status_code == 400 and exc.__cause__ is not None:
        return await hq_error(request, _body_error(exc.__cause__))
    code, message = {
        404: ("not_found", f"no route {where}; the API is described at /docs"),
        405: ("method_not_allowed", f"{where} is not allowed; see /docs for the methods"),
    }.get(
        exc.status_code,
        ("bad_request" if exc.status_code < 500 else "internal", str(exc.detail)),
    )
    return JSONResponse(
        {"code": code, "message": message}, status_code=exc.status_code, headers=exc.headers
    )


def _body_error(cause: BaseException) -> errors.HQError:
    """What FastAPI's 'There was an error parsing the body' was about."""
    if isinstance(cause, UnicodeDecodeError):
        return errors.ValidationFailed(
            f"the body is not valid JSON: it is not UTF-8 (byte {cause.start} is "
            f"{cause.object[cause.start : cause.start + 1]!r}); send UTF-8 JSON"
        )
    if isinstance(cause, ClientDisconnect):
        return errors.BadRequest("the body was cut off before it was complete")
    return errors.BadRequest(f"the body could not be read: {type(cause).__name__}: {cause}")


def _position(doc: Any, pos: int) -> str:
    """'line L, column C (byte B)' of character ``pos`` in the JSON text ``doc``."""
    text = doc if isinstance(doc, str) else ""
    before = text[:pos]
    line = before.count("\n") + 1
    column = pos - (before.rfind("\n") + 1) + 1
    byte = len(before.encode("utf-8", "surrogatepass"))
    return f"line {line}, column {column} (byte {byte})"


def _content_type_error(request: Request, first: dict[str, Any]) -> errors.HQError | None:
    """415 for a body sent as something other than JSON (FastAPI then validates raw bytes)."""
    ctype = request.headers.get("content-type", "")
    mime = ctype.split(";", 1)[0].strip().lower()
    is_json = mime in JSON_TYPES or mime.endswith("+json")
    if not ctype or is_json or tuple(first.get("loc", ())) != ("body",):
        return None
    return errors.UnsupportedMediaType(
        f"the body must be JSON: send 'Content-Type: application/json', not {ctype!r}"
    )


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = list(exc.errors())
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    wrong_type = _content_type_error(request, first)
    if wrong_type is not None:
        return await hq_error(request, wrong_type)
    loc = [str(p) for p in first.get("loc", ())]
    loc = loc[1:] if loc and loc[0] in LOCATIONS else loc  # a field may be named "path"
    field = ".".join(loc) or None
    msg = str(first.get("msg")).removeprefix("Value error, ")
    if first.get("type") == "extra_forbidden":
        msg = "unknown key (check its spelling against the API docs or docs/manifest.md)"
    message = f"{field}: {msg}" if field else msg
    if first.get("type") == "json_invalid":  # its loc holds a character position
        ctx = first.get("ctx")
        why = ctx.get("error", "") if isinstance(ctx, dict) else ""
        where = _position(exc.body, int(loc[0])) if loc and loc[0].isdigit() else "?"
        field, message = None, f"the body is not valid JSON: {why} at {where}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    details = {
        "errors": [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
            for e in problems[:20]
        ]
    }
    err = errors.ValidationFailed(message, field=field, details=details)
    return JSONResponse(_jsonable(err.to_body()), status_code=422)


def _jsonable(body: dict[str, Any]) -> dict[str, Any]:
    """Validation messages can quote input that JSON cannot carry (bytes, lone surrogates)."""
    text = json.dumps(body, default=repr, ensure_ascii=False)
    out: dict[str, Any] = json.loads(text.encode("utf-8", "replace"))
    return out


async def database_error(request: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After for what is worth a retry (``db.errors.is_retryable``), else 500."""
    if is_retryable(exc):
        logger.warning("database unavailable: %s", exc)
        err: errors.HQError = errors.Unavailable("the database is unavailable; retry shortly")
        return JSONResponse(err.to_body(), status_code=503, headers={"Retry-After": "1"})
    logger.exception("database error (request %s)", request.scope.get("hq.request_id", "-"))
    return JSONResponse(internal_body(request.scope), status_code=500)
