"""``GET /metrics`` in Prometheus' text format (any valid token)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST

from hq.server.deps import AnyRole, MetricsDep, SessionDep, SettingsDep
from hq.server.services import metrics as metrics_service

router = APIRouter(tags=["metrics"])


@router.get("/metrics", response_class=Response, responses={200: {"content": {"text/plain": {}}}})
async def metrics(
    session: SessionDep, metrics: MetricsDep, settings: SettingsDep, _: AnyRole
) -> Response:
    body = await metrics_service.render(
        session, metrics=metrics, offline_seconds=settings.agent_offline_seconds
    )
    return Response(body, media_type=CONTENT_TYPE_LATEST)
