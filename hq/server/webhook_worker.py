"""The delivery worker: a background task of every replica that sends due webhook deliveries.

Each round: settle the sweep checks, claim due deliveries (a try counted and held, so no other
replica sends them meanwhile), POST each one (signed, to the address the allow-list let through,
no redirects followed, a short timeout) outside any transaction, then record every answer.
A failed try (an answer that is not 2xx, or no answer) is due again after an exponential
back-off; after ``webhook_max_attempts`` tries the delivery is failed.
"""

from __future__ import annotations

import asyncio
import logging
import time

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.webhooks import DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from hq.server.metrics import Metrics
from hq.server.services import webhook_deliveries as deliveries
from hq.server.services import webhook_targets
from hq.server.services.health import VERSION
from hq.server.settings import ServerSettings

logger = logging.getLogger(__name__)

CLAIM_BATCH = 20  # sent concurrently, in one round
HOLD_MARGIN_SECONDS = 30.0  # past the send's timeout, before another worker may try again


class WebhookWorker:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: ServerSettings,
        metrics: Metrics,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._metrics = metrics
        self._settings = settings
        self._allow = settings.webhook_allow_list
        self._retry = deliveries.Retry(
            max_attempts=settings.webhook_max_attempts,
            base_seconds=settings.webhook_backoff_seconds,
            max_seconds=settings.webhook_backoff_max_seconds,
        )

    async def tick(self, http: httpx.AsyncClient) -> int:
        """One round; how many deliveries were tried."""
        s = self._settings
        # One short transaction (on SQLite each one is the write lock) for both.
        async with self._sessionmaker() as session, session.begin():
            await deliveries.settle_sweep_checks(session, public_url=s.resolved_public_url)
            claimed = await deliveries.claim_due(
                session,
                limit=CLAIM_BATCH,
                hold_seconds=s.webhook_timeout_seconds * 2 + HOLD_MARGIN_SECONDS,
            )
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self.send(http, c) for c in claimed))
        async with self._sessionmaker() as session, session.begin():
            for one, outcome in zip(claimed, outcomes, strict=True):
                status = await deliveries.record(
                    session, claimed=one, outcome=outcome, retry=self._retry
                )
                if status is not None:
                    self._metrics.webhook_tries.labels(outcome=status.value).inc()
                logger.info(
                    "webhook delivery %s try %d: %s -> %s",
                    one.id,
                    one.attempt,
                    outcome.status_code or outcome.error,
                    status,
                )
        return len(claimed)

    async def send(
        self, http: httpx.AsyncClient, claimed: deliveries.Claimed
    ) -> deliveries.Outcome:
        """One POST of ``claimed``; its answer, or what went wrong (never raises)."""
        started = time.monotonic()

        def outcome(status: int | None, error: str | None, text: str = "") -> deliveries.Outcome:
            ms = (time.monotonic() - started) * 1000
            return deliveries.Outcome(
                status_code=status, error=error, response=text, duration_ms=ms
            )

        try:
            target = webhook_targets.parse_target(claimed.url)
            address = await webhook_targets.resolve(target, self._allow)
        except (PermissionError, OSError) as exc:
            return outcome(None, str(exc))
        except errors.HQError as exc:  # a URL stored before a stricter check
            return outcome(None, f"not sent: {exc.message}")
        except ValueError as exc:  # an answer from DNS that is not an address
            return outcome(None, f"not sent: {exc}")
        url = httpx.URL(claimed.url)
        # To the very address that was checked: a second lookup could answer otherwise.
        pinned = url.copy_with(host=str(address))
        extensions = {"sni_hostname": target.host} if target.address is None else {}
        try:
            request = http.build_request(
                "POST",
                pinned,
                content=claimed.body.encode(),
                headers=signed_headers(claimed, host=url.netloc.decode("ascii")),
                extensions=extensions,
            )
            response = await http.send(request, stream=True, follow_redirects=False)
            try:
                text = await _excerpt(response)
            finally:
                await response.aclose()
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return outcome(None, f"{type(exc).__name__}: {exc}".rstrip(": "))
        return outcome(response.status_code, None, text)

    async def run(self) -> None:
        timeout = httpx.Timeout(self._settings.webhook_timeout_seconds)
        # trust_env=False: no proxy from the environment stands between the check and the send.
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            while True:
                tried = 0
                try:
                    tried = await self.tick(http)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # the database is away; try again next round
                    logger.warning("webhook worker round failed: %s", exc)
                if tried < CLAIM_BATCH:
                    await asyncio.sleep(self._settings.webhook_poll_seconds)


def signed_headers(claimed: deliveries.Claimed, *, host: str) -> dict[str, str]:
    """The headers of one try: what it is, and its signature over this try's timestamp."""
    timestamp = str(int(time.time()))
    signature = deliveries.signature(
        secret=claimed.secret, timestamp=timestamp, body=claimed.body.encode()
    )
    return {
        "Host": host,
        "Content-Type": "application/json",
        "User-Agent": f"HQ-Webhooks/{VERSION}",
        EVENT_HEADER: claimed.event,
        DELIVERY_HEADER: claimed.id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature,
    }


async def _excerpt(response: httpx.Response) -> str:
    """The answer's first bytes as text: a receiver's error page need not be read whole."""
    kept = b""
    async for chunk in response.aiter_bytes():
        kept += chunk
        if len(kept) >= deliveries.MAX_RESPONSE_CHARS:
            break
    return kept[: deliveries.MAX_RESPONSE_CHARS].decode("utf-8", errors="replace")
