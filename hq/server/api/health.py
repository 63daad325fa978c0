"""``GET /api/v1/health``: the one route that needs no token."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hq.schemas.common import Health
from hq.server.deps import SessionmakerDep, StoreDep
from hq.server.services import health as health_service

router = APIRouter(tags=["health"])


@router.get(
    "/api/v1/health",
    response_model=Health,
    responses={503: {"model": Health, "description": "The database or the store is down"}},
)
async def health(response: Response, sessionmaker: SessionmakerDep, store: StoreDep) -> Health:
    report = await health_service.check(sessionmaker=sessionmaker, store=store)
    if report.status != "ok":
        response.status_code = 503
    return report
