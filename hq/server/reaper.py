"""The background loop: requeue expired leases, backstop timeouts, wake claimers on backoff end.

After an outage of HQ or its database (a start, or a gap in successful ticks longer than a
lease), every running lease first gets a grace period, so agents that kept working can report
before anything is declared lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.server import queue
from hq.server.db.types import utcnow
from hq.server.notify import Notifier
from hq.server.settings import ServerSettings

logger = logging.getLogger(__name__)


class Reaper:
    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        notifier: Notifier,
        settings: ServerSettings,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._notifier = notifier
        self._settings = settings
        self._last_ok: float | None = None
        self._last_tick_at: datetime = utcnow()

    async def tick(self) -> queue.ReapResult:
        s = self._settings
        outage = self._last_ok is None or (time.monotonic() - self._last_ok > s.lease_ttl_seconds)
        async with self._sessionmaker() as session, session.begin():
            if outage:
                extended = await queue.extend_running_leases(
                    session, grace_seconds=s.outage_grace_seconds
                )
                if extended:
                    logger.warning(
                        "gave %d running lease(s) a %g s grace period after an outage",
                        extended,
                        s.outage_grace_seconds,
                    )
            result = await queue.reap(
                session,
                backoff_seconds=s.retry_backoff_seconds,
                backoff_max_seconds=s.retry_backoff_max_seconds,
                timeout_slack_seconds=s.timeout_slack_seconds,
            )
            due = await queue.due_since(session, since=self._last_tick_at)
        self._last_tick_at = utcnow()
        self._last_ok = time.monotonic()
        if result.requeued or due:
            self._notifier.fire("queued")  # every idle claim: the count is not known here
        if result.lost or result.timed_out or result.cancelled:
            self._notifier.fire("done")
        if result != queue.ReapResult():
            logger.info("reaper: %s", result)
        return result

    async def run(self) -> None:
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away; the next tick is an outage tick
                logger.warning("reaper tick failed: %s", exc)
            await asyncio.sleep(self._settings.reaper_interval_seconds)
