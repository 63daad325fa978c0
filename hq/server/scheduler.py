"""The background loop that fires due schedules (``services.schedule_firing``).

Every replica runs one; they share the work through row locks, and the database decides who
fires a slot. Each schedule fires in a transaction of its own, so one failing submission holds
up no other schedule. Between ticks the loop sleeps until the earliest ``next_at`` (at most
``schedule_tick_seconds``), or until a schedule is created or resumed (the "schedules" topic,
from any replica through NOTIFY).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.server.db.types import utcnow
from hq.server.notify import Notifier
from hq.server.services import schedule_firing
from hq.server.services.schedules import TOPIC
from hq.server.settings import ServerSettings

logger = logging.getLogger(__name__)

MIN_SLEEP_SECONDS = 0.01


class Scheduler:
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

    async def tick(self) -> float:
        """Fire what is due now; the seconds to sleep before the next look. An idle tick is one
        short read (on SQLite every transaction takes the write lock: keep them few)."""
        now = utcnow()
        async with self._sessionmaker() as session:
            due = await schedule_firing.due_ids(session, now=now)
            earliest = None if due else await schedule_firing.earliest_next_at(session)
        failed = False
        for schedule_id in due:
            try:
                async with self._sessionmaker() as session, session.begin():
                    run = await schedule_firing.fire(
                        session, schedule_id=schedule_id, now=now, settings=self._settings
                    )
            except asyncio.CancelledError:
                raise
            except Exception:  # one schedule's trouble must not stop the others
                logger.exception("schedule %s: firing failed", schedule_id)
                failed = True
                continue
            if run is not None:
                logger.info("schedule %s: fired slot %s", schedule_id, run.slot_at.isoformat())
        if failed:  # still due: look again in a tick, not at once
            return self._settings.schedule_tick_seconds
        if due:
            async with self._sessionmaker() as session:
                earliest = await schedule_firing.earliest_next_at(session)
        return self._until(earliest)

    def _until(self, earliest: datetime | None) -> float:
        cap = self._settings.schedule_tick_seconds
        if earliest is None:
            return cap
        # a hair past the slot, so the tick that wakes finds it due
        wait = (earliest - utcnow() + timedelta(milliseconds=2)).total_seconds()
        return max(MIN_SLEEP_SECONDS, min(cap, wait))

    async def run(self) -> None:
        while True:
            wake = self._notifier.watch(TOPIC)  # before the read: no creation is missed
            try:
                sleep = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: try again on the next tick
                logger.warning("scheduler tick failed: %s", exc)
                sleep = self._settings.schedule_tick_seconds
            if self._notifier.closing:  # stopping: its waits no longer wait
                await asyncio.sleep(sleep)
            else:
                await self._notifier.wait(wake, sleep)
