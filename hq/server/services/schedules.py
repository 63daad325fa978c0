"""Schedules: create (checked as their first run would be), read, list, pause, resume, delete,
and their runs. The firing itself is ``schedule_firing``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import Page
from hq.schemas.schedules import ScheduleCreate, ScheduleRead, ScheduleRunRead
from hq.server import notify, paging
from hq.server.db.automation import Schedule, ScheduleRun
from hq.server.db.types import utcnow
from hq.server.services import schedule_kinds, slots
from hq.server.settings import ServerSettings

SCHEDULE_SORT = "-created_at"
RUN_SORT = "-slot_at"
TOPIC = "schedules"  # a schedule created or resumed: firers look again at once


def timing(row: Schedule) -> slots.Timing:
    return slots.Timing(
        cron=row.cron, timezone=row.timezone, interval_s=row.interval_s, anchor_at=row.anchor_at
    )


async def create_schedule(
    session: AsyncSession, *, body: ScheduleCreate, created_by: str | None, settings: ServerSettings
) -> ScheduleRead:
    await schedule_kinds.check(
        session, kind=body.kind, body=body.body, created_by=created_by, settings=settings
    )
    now = utcnow()
    anchor = None
    if body.interval_s is not None:
        anchor = slots.interval_anchor(now=now, interval_s=body.interval_s, start_at=body.start_at)
    row = Schedule(
        id=str(uuid.uuid4()),
        name=body.name,
        kind=body.kind.value,
        body=body.body,
        cron=body.cron,
        timezone=body.timezone,
        interval_s=body.interval_s,
        anchor_at=anchor,
        catch_up=body.catch_up.value,
        paused=body.paused,
        skipped=0,
        created_by=created_by,
        created_at=now,
    )
    row.next_at = slots.first_slot(timing(row), now=now)
    session.add(row)
    await session.flush()
    await notify.mark(session, TOPIC)
    return await _read(session, row)


async def _row(session: AsyncSession, *, schedule_id: str, lock: bool = False) -> Schedule:
    stmt = select(Schedule).where(Schedule.id == schedule_id)
    row = await session.scalar(stmt.with_for_update() if lock else stmt)
    if row is None:
        raise errors.NotFound(f"schedule {schedule_id} not found")
    return row


async def get_schedule(session: AsyncSession, *, schedule_id: str) -> ScheduleRead:
    return await _read(session, await _row(session, schedule_id=schedule_id))


async def _read(session: AsyncSession, row: Schedule) -> ScheduleRead:
    return (await _with_last_runs(session, [row]))[0]


async def _with_last_runs(session: AsyncSession, rows: list[Schedule]) -> list[ScheduleRead]:
    """Each schedule with its latest run: one query for all of them."""
    if not rows:
        return []
    latest = (
        select(ScheduleRun.schedule_id, func.max(ScheduleRun.slot_at).label("slot_at"))
        .where(ScheduleRun.schedule_id.in_([r.id for r in rows]))
        .group_by(ScheduleRun.schedule_id)
        .subquery()
    )
    runs = await session.scalars(
        select(ScheduleRun).join(
            latest,
            (ScheduleRun.schedule_id == latest.c.schedule_id)
            & (ScheduleRun.slot_at == latest.c.slot_at),
        )
    )
    last = {r.schedule_id: ScheduleRunRead.model_validate(r) for r in runs}
    return [ScheduleRead.from_row(r, last_run=last.get(r.id)) for r in rows]


async def list_schedules(
    session: AsyncSession, *, limit: int, cursor: str | None
) -> Page[ScheduleRead]:
    """Schedules, newest first, each with its last run."""
    stmt = select(Schedule)
    if cursor:
        value, last_id = paging.decode_cursor(cursor, sort=SCHEDULE_SORT, value_types=(datetime,))
        stmt = stmt.where(
            paging.after(
                Schedule.created_at, Schedule.id, value=value, last_id=last_id, descending=True
            )
        )
    order = (Schedule.created_at.desc(), Schedule.id.desc())
    rows = (await session.scalars(stmt.order_by(*order).limit(limit + 1))).all()
    page, next_cursor = paging.cut_page(
        rows, limit, sort=SCHEDULE_SORT, key=lambda s: (s.created_at, s.id)
    )
    return Page[ScheduleRead](items=await _with_last_runs(session, page), next_cursor=next_cursor)


async def list_runs(
    session: AsyncSession, *, schedule_id: str, limit: int, cursor: str | None
) -> Page[ScheduleRunRead]:
    """A schedule's runs, newest slot first (a slot is unique within a schedule)."""
    await _row(session, schedule_id=schedule_id)
    stmt = select(ScheduleRun).where(ScheduleRun.schedule_id == schedule_id)
    if cursor:
        value, _ = paging.decode_cursor(cursor, sort=RUN_SORT, value_types=(datetime,))
        stmt = stmt.where(ScheduleRun.slot_at < value)
    rows = (await session.scalars(stmt.order_by(ScheduleRun.slot_at.desc()).limit(limit + 1))).all()
    page, next_cursor = paging.cut_page(
        rows, limit, sort=RUN_SORT, key=lambda r: (r.slot_at, schedule_id)
    )
    return Page[ScheduleRunRead](
        items=[ScheduleRunRead.model_validate(r) for r in page], next_cursor=next_cursor
    )


def _check_owner(row: Schedule, owner_token_id: str | None, what: str) -> None:
    if owner_token_id is not None and row.created_by != owner_token_id:
        raise errors.Forbidden(
            f"schedule {row.id} was created with another token: only that token or an admin "
            f"may {what} it"
        )


async def set_paused(
    session: AsyncSession, *, schedule_id: str, paused: bool, owner_token_id: str | None
) -> ScheduleRead:
    """Pause: nothing fires until resumed. Resume: from the first slot to come (slots passed
    while paused are not owed). ``owner_token_id``: the caller's (None for an admin)."""
    row = await _row(session, schedule_id=schedule_id, lock=True)
    _check_owner(row, owner_token_id, "pause" if paused else "resume")
    if paused and not row.paused:
        row.paused, row.paused_reason = True, None
    elif not paused and row.paused:
        row.paused, row.paused_reason = False, None
        row.next_at = slots.first_slot(timing(row), now=utcnow())
        await notify.mark(session, TOPIC)
    await session.flush()
    return await _read(session, row)


async def delete_schedule(
    session: AsyncSession, *, schedule_id: str, owner_token_id: str | None
) -> None:
    """The schedule and its runs' records; the jobs and sweeps it submitted stay."""
    row = await _row(session, schedule_id=schedule_id, lock=True)
    _check_owner(row, owner_token_id, "delete")
    await session.execute(delete(ScheduleRun).where(ScheduleRun.schedule_id == row.id))
    await session.delete(row)
    await session.flush()
