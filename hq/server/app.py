"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hq import errors
from hq.schemas.common import Role
from hq.server import deps, migrations
from hq.server.api import (
    agents,
    artifacts,
    datasets,
    health,
    jobs,
    leases,
    results,
    scripts,
    storage,
    sweeps,
    tokens,
)
from hq.server.api import metrics as metrics_api
from hq.server.auth import PrincipalCache
from hq.server.db.errors import is_retryable
from hq.server.db.session import create_engine, create_sessionmaker
from hq.server.metrics import Metrics
from hq.server.notify import NOTIFIER_KEY, Notifier
from hq.server.reaper import Reaper
from hq.server.services import tokens as token_service
from hq.server.settings import ServerSettings, write_private
from hq.server.storage import make_store

logger = logging.getLogger(__name__)

# Uploads stream to storage with their own limit (HQ_MAX_UPLOAD_BYTES); everything else is JSON.
STREAMED_PREFIXES = ("/api/v1/datasets/", "/storage/")
# Where a request value came from; not part of the field name an error reports.
LOCATIONS = ("body", "query", "path", "header", "cookie")


ROUTERS = (
    health.router,
    tokens.router,
    scripts.router,
    datasets.router,
    jobs.router,
    artifacts.router,
    leases.router,
    sweeps.router,
    results.router,
    agents.router,
    metrics_api.router,
    storage.router,
)


def create_app(settings: ServerSettings) -> FastAPI:
    app = FastAPI(
        title="HQ",
        version="0.1.0",
        lifespan=_lifespan(settings),
        description="Run Python analysis scripts as versioned container jobs. "
        "Every route but /api/v1/health needs 'Authorization: Bearer'.",
    )
    app.state.settings = settings
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    for router in ROUTERS:
        app.include_router(router)
    _install_error_handlers(app)
    return app


def _lifespan(settings: ServerSettings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: migrate, open the database and the store (``app.state``, read by ``deps``), the
    first admin token, the notifier, the reaper and the token cache. Stop them in turn."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, notifier = await _open(app, settings)
        await _bootstrap_admin(app, settings)
        await notifier.start()
        reaper = Reaper(sessionmaker=app.state.sessionmaker, notifier=notifier, settings=settings)
        tasks = [asyncio.create_task(reaper.run()), app.state.principals.start(notifier)]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await notifier.stop()
            await engine.dispose()

    return lifespan


async def _open(app: FastAPI, settings: ServerSettings) -> tuple[AsyncEngine, Notifier]:
    """The migrated database, its sessions, the notifier, the metrics and the object store,
    kept in ``app.state``."""
    url = settings.resolved_database_url
    await asyncio.to_thread(migrations.upgrade, url)
    engine = create_engine(url)
    notifier = Notifier(database_url=url)
    sessionmaker = create_sessionmaker(engine)
    sessionmaker.configure(info={NOTIFIER_KEY: notifier})
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.notifier = notifier
    app.state.metrics = Metrics()
    app.state.principals = PrincipalCache()
    app.state.store = make_store(
        url=settings.resolved_storage_url,
        public_url=settings.resolved_public_url,
        secret_key=settings.resolved_secret_key(),
        s3_access_key=settings.s3_access_key,
        s3_secret_key=settings.s3_secret_key,
        s3_region=settings.s3_region,
        max_put_bytes=settings.max_upload_bytes,
    )
    return engine, notifier


async def _bootstrap_admin(app: FastAPI, settings: ServerSettings) -> None:
    """On first start: create the admin token, print it once, write $HQ_HOME/admin.token."""
    async with app.state.sessionmaker() as session, session.begin():
        if session.bind.dialect.name == "postgresql":
            # Replicas starting together take turns here, or both insert the same token.
            lock = text("SELECT pg_advisory_xact_lock(:key)")
            await session.execute(lock, {"key": migrations.MIGRATION_LOCK_KEY})
        if settings.admin_token:
            token_hash = token_service.hash_token(settings.admin_token)
            known = await token_service.find_by_hash(session, token_hash=token_hash)
            if known is None:
                await token_service.create_token(
                    session, name="admin", role=Role.admin, value=settings.admin_token
                )
            elif known.revoked_at is not None:  # revoked stays revoked, whatever the env says
                logger.warning("HQ_ADMIN_TOKEN names a revoked token; it will get 401")
            return
        if await token_service.has_admin(session):
            return
        created = await token_service.create_token(session, name="admin", role=Role.admin)
    settings.home.mkdir(parents=True, exist_ok=True)
    path = settings.home / "admin.token"
    write_private(path, created.token)
    # The one time this token is ever shown; HQ keeps only its hash.
    sys.stderr.write(f"\nHQ admin token (shown once, also in {path}):\n  {created.token}\n\n")


def _install_error_handlers(app: FastAPI) -> None:
    """One place maps errors to status codes and HQ's error shape (``hq.client`` maps them
    back to ``hq.errors`` classes)."""
    app.exception_handler(errors.HQError)(_hq_error)
    app.exception_handler(StarletteHTTPException)(_http_error)
    app.exception_handler(RequestValidationError)(_validation_error)
    app.exception_handler(DBAPIError)(_database_error)
    app.exception_handler(PoolTimeout)(_database_error)  # no free connection: 503 as well


async def _hq_error(_: Request, exc: errors.HQError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(exc.to_body(), status_code=exc.status_code, headers=headers)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Starlette's own answers (no such route, method not allowed) in HQ's error shape."""
    where = f"{request.method} {request.url.path}"
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


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = list(exc.errors())
    first = problems[0] if problems else {"loc": (), "msg": "invalid request"}
    if first.get("type") == "json_invalid":
        # FastAPI parses the body before it checks the token: check it here, so that a
        # request without a valid token gets 401 whatever its body.
        try:
            await deps.get_principal(request, await deps.bearer(request))
        except errors.NotAuthenticated as denied:
            return await _hq_error(request, denied)
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
        field, message = None, f"the body is not valid JSON: {why} at character {loc[0]}"
    if len(problems) > 1:
        message += f" (and {len(problems) - 1} more problem(s))"
    details = {
        "errors": [
            {"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg")}
            for e in problems[:20]
        ]
    }
    err = errors.ValidationFailed(message, field=field, details=details)
    return JSONResponse(err.to_body(), status_code=422)


async def _database_error(_: Request, exc: Exception) -> JSONResponse:
    """503 with Retry-After for what is worth a retry (``db.errors.is_retryable``), else 500."""
    if is_retryable(exc):
        logger.warning("database unavailable: %s", exc)
        err: errors.HQError = errors.Unavailable("the database is unavailable; retry shortly")
        return JSONResponse(err.to_body(), status_code=503, headers={"Retry-After": "1"})
    logger.exception("database error", exc_info=exc)
    err = errors.HQError()
    return JSONResponse(err.to_body(), status_code=500)


class BodyLimit:
    """Refuse request bodies past ``max_bytes`` with 413, counting what actually arrives.

    A body without Content-Length (chunked) is read up to the limit before the app sees it: an
    error raised while FastAPI reads the body would come out as its generic 400 instead.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(STREAMED_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await _too_large(send, self.max_bytes)
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
                await _too_large(send, self.max_bytes)
                return
            if not message.get("more_body", False):
                break

        async def replay() -> Message:
            return buffered.pop(0) if buffered else await receive()

        await self.app(scope, replay, send)


def _too_large_text(max_bytes: int) -> str:
    return f"the request body is over {max_bytes} bytes; send less (datasets: upload as a file)"


async def _too_large(send: Send, max_bytes: int) -> None:
    err = errors.PayloadTooLarge(_too_large_text(max_bytes))
    response = JSONResponse(err.to_body(), status_code=413)
    await response({"type": "http"}, _no_receive, send)


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory hq.server.app:app_from_env``."""
    from hq.server.settings import get_settings

    return create_app(get_settings())
