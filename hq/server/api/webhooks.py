"""Webhooks: create one (its secret shown once), list them, their deliveries, delete one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status

from hq import errors
from hq.schemas.common import Page
from hq.schemas.webhooks import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead
from hq.server.deps import SessionDep, SettingsDep, Submitter, Viewer
from hq.server.edge.openapi import raises
from hq.server.services import webhooks as webhook_service

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
MAX_DELIVERY_PAGE = 200


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    responses=raises(errors.ValidationFailed),
)
async def create_webhook(
    body: WebhookCreate, session: SessionDep, settings: SettingsDep, principal: Submitter
) -> WebhookCreated:
    """A webhook for job, sweep and/or pipeline ends. Its URL must be in the operator's
    HQ_WEBHOOK_ALLOW; the secret that signs its deliveries is in this answer only."""
    async with session.begin():
        return await webhook_service.create_webhook(
            session, body=body, created_by=principal.token_id, allow=settings.webhook_allow_list
        )


@router.get("", response_model=list[WebhookRead])
async def list_webhooks(session: SessionDep, _: Viewer) -> list[WebhookRead]:
    return await webhook_service.list_webhooks(session)


@router.get("/{webhook_id}", response_model=WebhookRead, responses=raises(errors.NotFound))
async def get_webhook(webhook_id: str, session: SessionDep, _: Viewer) -> WebhookRead:
    return await webhook_service.get_webhook(session, webhook_id=webhook_id)


@router.delete(
    "/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=raises(errors.NotFound, errors.Forbidden),
)
async def delete_webhook(webhook_id: str, session: SessionDep, principal: Submitter) -> None:
    """Delete a webhook and its deliveries; a submitter deletes only its own token's."""
    async with session.begin():
        await webhook_service.delete_webhook(
            session,
            webhook_id=webhook_id,
            token_id=principal.token_id,
            is_admin=principal.is_admin,
        )


@router.get(
    "/{webhook_id}/deliveries",
    response_model=Page[DeliveryRead],
    responses=raises(errors.NotFound, errors.BadRequest),
)
async def list_deliveries(
    webhook_id: str,
    session: SessionDep,
    _: Viewer,
    limit: Annotated[int, Query(ge=1, le=MAX_DELIVERY_PAGE)] = 50,
    cursor: str | None = None,
) -> Page[DeliveryRead]:
    """The webhook's deliveries, newest first, each with its tries: status code or error, the
    answer's first bytes, how long it took."""
    return await webhook_service.list_deliveries(
        session, webhook_id=webhook_id, limit=limit, cursor=cursor
    )
