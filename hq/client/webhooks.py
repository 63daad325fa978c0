"""Webhooks: signed notifications of job, sweep and pipeline ends, and their deliveries."""

from __future__ import annotations

from collections.abc import Sequence

from hq.client._base import BaseClient, build, query
from hq.schemas.common import Page
from hq.schemas.webhooks import DeliveryRead, WebhookCreate, WebhookCreated, WebhookRead


class WebhooksClient(BaseClient):
    def create_webhook(
        self,
        url: str,
        *,
        events: Sequence[str],
        failures_only: bool = False,
        script: str | None = None,
        description: str = "",
    ) -> WebhookCreated:
        """A webhook; the answer's ``secret`` (which signs every delivery) is shown only here."""
        fields = {
            "url": url,
            "events": list(events),
            "failures_only": failures_only,
            "script": script,
            "description": description,
        }
        body = build(WebhookCreate, fields)
        return self._json("POST", "/api/v1/webhooks", WebhookCreated, body=body)

    def list_webhooks(self) -> list[WebhookRead]:
        return self._list("/api/v1/webhooks", WebhookRead)

    def get_webhook(self, webhook_id: str) -> WebhookRead:
        return self._json("GET", f"/api/v1/webhooks/{webhook_id}", WebhookRead)

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", f"/api/v1/webhooks/{webhook_id}")

    def list_deliveries(
        self, webhook_id: str, *, limit: int = 50, cursor: str | None = None
    ) -> Page[DeliveryRead]:
        """The webhook's deliveries, newest first, each with its tries and their answers."""
        return self._json(
            "GET",
            f"/api/v1/webhooks/{webhook_id}/deliveries",
            Page[DeliveryRead],
            params=query(limit=limit, cursor=cursor),
        )
