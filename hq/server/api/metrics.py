"""``GET /metrics`` in Prometheus' text format (any valid token)."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hq.server.deps import AnyRole, SessionDep, SettingsDep
from hq.server.services import agents as agent_service

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(
    request: Request, session: SessionDep, settings: SettingsDep, _: AnyRole
) -> Response:
    agents = await agent_service.list_agents(
        session, offline_seconds=settings.agent_offline_seconds
    )
    counts = dict(Counter(a.status for a in agents))
    body = await request.app.state.metrics.render(session, agent_counts=counts)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
