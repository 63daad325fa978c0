"""A schedule's slots: the next one after a time, and what to fire when the firer is late.

Pure functions (no database), so the rules are unit-tested at exact times.

Catch-up: the firer owes the slots from ``next_at`` up to now. One slot, at most ``grace``
seconds old, is on time and fires. Otherwise slots were missed (no server ran, or it was
stalled): with ``skip`` they do not run, except the latest when it is itself on time; with
``once`` the latest runs, late or not. Either way the others are counted as skipped and
``next_at`` moves to the first slot still to come, so a schedule never fires a burst.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hq.schemas import cron
from hq.schemas.schedules import CatchUp

MAX_SLOTS_PER_PLAN = 100_000  # a minute cron down for months is caught up over a few ticks


@dataclass(frozen=True)
class Timing:
    """When a schedule fires: a cron expression in a zone, or every ``interval_s`` from
    ``anchor_at`` (slots are ``anchor_at + k * interval_s``)."""

    cron: str | None
    timezone: str
    interval_s: int | None
    anchor_at: datetime | None

    def next_after(self, after: datetime) -> datetime | None:
        """The first slot strictly after ``after``; None when there is none."""
        if self.cron is not None:
            return cron.parse(self.cron).next_after(after, cron.zone(self.timezone))
        assert self.interval_s is not None and self.anchor_at is not None
        if after < self.anchor_at:
            return self.anchor_at
        k = math.floor((after - self.anchor_at).total_seconds() / self.interval_s) + 1
        return self.anchor_at + timedelta(seconds=k * self.interval_s)


def first_slot(timing: Timing, *, now: datetime) -> datetime | None:
    """The first slot at or after ``now`` (a new or resumed schedule owes nothing before)."""
    return timing.next_after(now - timedelta(microseconds=1))


def interval_anchor(*, now: datetime, interval_s: int, start_at: datetime | None) -> datetime:
    """Where an interval schedule's slots start: ``start_at``, or the whole second one
    interval from now."""
    if start_at is not None:
        return start_at.astimezone(UTC)
    whole = now.replace(microsecond=0) + timedelta(seconds=1 if now.microsecond else 0)
    return whole + timedelta(seconds=interval_s)


@dataclass(frozen=True)
class Plan:
    fire: datetime | None  # the slot to fire now, if any
    skipped: int  # slots that will never run
    next_at: datetime | None  # the next slot owed after this plan


def plan(
    timing: Timing,
    *,
    next_at: datetime,
    now: datetime,
    catch_up: CatchUp,
    grace_s: float,
) -> Plan:
    """What to do about the slots due from ``next_at`` (<= ``now``)."""
    count, last, cursor = _due(timing.next_after, next_at=next_at, now=now, timing=timing)
    if cursor is not None and cursor <= now:  # more than the cap: go on next tick
        return Plan(fire=None, skipped=count, next_at=cursor)
    on_time = (now - last).total_seconds() <= grace_s
    if on_time or catch_up == CatchUp.once:
        return Plan(fire=last, skipped=count - 1, next_at=cursor)
    return Plan(fire=None, skipped=count, next_at=cursor)


def _due(
    next_after: Callable[[datetime], datetime | None],
    *,
    next_at: datetime,
    now: datetime,
    timing: Timing,
) -> tuple[int, datetime, datetime | None]:
    """How many slots are due from ``next_at`` to ``now``, the latest, and the one after it."""
    if timing.interval_s is not None:  # arithmetic: no walk over a long outage
        step = timing.interval_s
        count = math.floor((now - next_at).total_seconds() / step) + 1
        last = next_at + timedelta(seconds=(count - 1) * step)
        return count, last, last + timedelta(seconds=step)
    count, last = 0, next_at
    slot: datetime | None = next_at
    while slot is not None and slot <= now and count < MAX_SLOTS_PER_PLAN:
        count, last = count + 1, slot
        slot = next_after(slot)
    return count, last, slot
