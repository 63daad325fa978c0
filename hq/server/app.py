"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from hq.schemas.common import Role
from hq.server import edge, migrations
from hq.server.api import (
    agents,
    artifacts,
    datasets,
    health,
    jobs,
    leases,
    pipelines,
    results,
    schedules,
    scripts,
    storage,
    sweeps,
    tokens,
    webhooks,
)
from hq.server.api import metrics as metrics_api
from hq.server.auth import PrincipalCache
from hq.server.db.session import create_engine, create_reader, create_sessionmaker
from hq.server.metrics import Metrics
from hq.server.notify import NOTIFIER_KEY, Notifier
from hq.server.queue import ends
from hq.server.reaper import Reaper
from hq.server.scheduler import Scheduler
from hq.server.services import pipeline_steps, pipeline_sweeps
from hq.server.services import tokens as token_service
from hq.server.services import webhooks as webhook_service
from hq.server.settings import ServerSettings, write_private
from hq.server.storage import make_store
from hq.server.webhook_worker import WebhookWorker

logger = logging.getLogger(__name__)


# Routes are matched in this order, one by one: the agents' protocol (claim, heartbeat,
# complete), called for every job, comes first. No two routers serve one method and path
# (leases and jobs share /api/v1/jobs/{id}/logs, POST and GET), so the order changes no answer.
ROUTERS = (
    agents.router,
    leases.router,
    health.router,
    tokens.router,
    scripts.router,
    datasets.router,
    jobs.router,
    artifacts.router,
    sweeps.router,
    schedules.router,
    pipelines.router,
    results.router,
    metrics_api.router,
    storage.router,
    webhooks.router,
)


def create_app(settings: ServerSettings) -> FastAPI:
    app = FastAPI(
        title="HQ",
        version="0.1.0",
        lifespan=_lifespan(settings),
        docs_url=None,  # edge.docs serves /docs with local assets; ReDoc needs a CDN
        redoc_url=None,
        description="Run Python analysis scripts as versioned container jobs. "
        "Every route but /api/v1/health needs 'Authorization: Bearer'.",
    )
    app.state.settings = settings
    pipeline_steps.register()
    for router in ROUTERS:
        app.include_router(router)
    edge.install(app, settings)
    # Deliveries of a job's end are written in the transaction that ends it (an outbox).
    ends.on_end(webhook_service.job_ends)
    return app


def _lifespan(settings: ServerSettings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Start: migrate, open the database and the store (``app.state``, read by ``deps``), the
    first admin token, the notifier, the reaper, the schedule firer, the token cache and the
    webhook delivery worker. Stop them in turn."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine, notifier = await _open(app, settings)
        await _bootstrap_admin(app, settings)
        await notifier.start()
        reaper = Reaper(sessionmaker=app.state.sessionmaker, notifier=notifier, settings=settings)
        scheduler = Scheduler(
            sessionmaker=app.state.sessionmaker, notifier=notifier, settings=settings
        )
        webhook_worker = WebhookWorker(
            sessionmaker=app.state.sessionmaker, settings=settings, metrics=app.state.metrics
        )
        tasks = [
            asyncio.create_task(reaper.run(), name="hq-reaper"),
            asyncio.create_task(scheduler.run(), name="hq-scheduler"),
            app.state.principals.start(notifier),
            asyncio.create_task(webhook_worker.run(), name="hq-webhooks"),
        ]
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
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sessionmaker
    app.state.reader = create_reader(engine)
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
    # Services reacting to a job's end (a pipeline's next step) reach the store through the session.
    limits = pipeline_sweeps.SweepLimits(
        offline_seconds=settings.agent_offline_seconds,
        default_timeout_s=settings.default_timeout_seconds,
        max_params_bytes=settings.max_params_bytes,
        max_sweep_params_bytes=settings.max_sweep_params_bytes,
    )
    sessionmaker.configure(
        info={
            NOTIFIER_KEY: notifier,
            pipeline_steps.STORE_KEY: app.state.store,
            webhook_service.PUBLIC_URL_KEY: settings.resolved_public_url,
            pipeline_sweeps.LIMITS_KEY: limits,
        }
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


def app_from_env() -> FastAPI:
    """For ``uvicorn --factory hq.server.app:app_from_env``."""
    from hq.server.settings import get_settings

    return create_app(get_settings())
