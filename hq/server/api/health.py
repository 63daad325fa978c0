"""``GET /api/v1/health``: the one route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from hq.schemas.common import Health
from hq.server.db.types import utcnow

router = APIRouter(tags=["health"])
VERSION = "0.1.0"


@router.get("/api/v1/health", response_model=Health)
async def health(request: Request, response: Response) -> Health:
    database = storage = "ok"
    try:
        async with request.app.state.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except Exception as exc:
        database = f"error: {type(exc).__name__}"
    try:
        await request.app.state.store.check()
    except Exception as exc:
        storage = f"error: {type(exc).__name__}"
    ok = database == storage == "ok"
    if not ok:
        response.status_code = 503
    return Health(
        status="ok" if ok else "degraded",
        database=database,
        storage=storage,
        version=VERSION,
        time=utcnow(),
    )
