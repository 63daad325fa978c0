"""Firing one due schedule: claim it, record the run for its slot, submit, advance ``next_at``.

All in the caller's transaction. On PostgreSQL the schedule's row is taken ``FOR UPDATE SKIP
LOCKED``, so replicas that look at once never wait for each other and only one fires; on SQLite
the ``BEGIN IMMEDIATE`` transaction makes the firer the only writer. The row is re-read with
``next_at <= now`` under that lock, so a replica that read it before another committed finds it
no longer due; the unique (schedule, slot) of ``schedule_runs`` is the last guard. A submission
that fails (a script's latest version now wants other params, a dataset was never uploaded) is
rolled back to a savepoint and recorded as the run's error: the slot is spent, the schedule
goes on. A schedule whose creator token was revoked, or lost the right to submit, pauses.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.common import Role
from hq.schemas.schedules import CatchUp, ScheduleKind
from hq.server.db.automation import Schedule, ScheduleRun
from hq.server.db.models import Token
from hq.server.services import schedule_kinds, slots
from hq.server.services.schedules import timing
from hq.server.settings import ServerSettings

logger = logging.getLogger(__name__)

SUBMIT_ROLES = frozenset({Role.admin.value, Role.submitter.value})


async def due_ids(session: AsyncSession, *, now: datetime, limit: int = 100) -> list[str]:
    """Schedules due by ``now``, oldest slot first (a plain read: nothing is locked)."""
    rows = await session.scalars(
        select(Schedule.id)
        .where(Schedule.paused.is_(False), Schedule.next_at <= now)
        .order_by(Schedule.next_at)
        .limit(limit)
    )
    return list(rows.all())


async def earliest_next_at(session: AsyncSession) -> datetime | None:
    return await session.scalar(
        select(Schedule.next_at)
        .where(Schedule.paused.is_(False), Schedule.next_at.is_not(None))
        .order_by(Schedule.next_at)
        .limit(1)
    )


async def _claim(session: AsyncSession, *, schedule_id: str, now: datetime) -> Schedule | None:
    stmt = select(Schedule).where(
        Schedule.id == schedule_id, Schedule.paused.is_(False), Schedule.next_at <= now
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    return await session.scalar(stmt)


async def _creator_problem(session: AsyncSession, row: Schedule) -> str | None:
    """Why the schedule's creator may not submit any more, if so."""
    token = await session.get(Token, row.created_by) if row.created_by else None
    if token is None or token.revoked_at is not None:
        return "the token that created this schedule was revoked: create it again with a valid one"
    if token.role not in SUBMIT_ROLES:
        return f"the token that created this schedule has role {token.role!r}; it cannot submit"
    return None


async def fire(
    session: AsyncSession, *, schedule_id: str, now: datetime, settings: ServerSettings
) -> ScheduleRun | None:
    """Fire ``schedule_id`` if it is still due and no other firer holds it: the run recorded
    (with the ids it submitted, or its error), or None when nothing fired."""
    row = await _claim(session, schedule_id=schedule_id, now=now)
    if row is None or row.next_at is None:
        return None
    plan = slots.plan(
        timing(row),
        next_at=row.next_at,
        now=now,
        catch_up=CatchUp(row.catch_up),
        grace_s=settings.schedule_grace_seconds,
    )
    row.next_at, row.skipped = plan.next_at, row.skipped + plan.skipped
    if plan.skipped:
        logger.info("schedule %s: %d missed slot(s) skipped", row.id, plan.skipped)
    if plan.fire is None:
        await session.flush()
        return None
    run = ScheduleRun(schedule_id=row.id, slot_at=plan.fire, fired_at=now)
    try:
        async with session.begin_nested():
            session.add(run)
            await session.flush()
    except IntegrityError:  # another firer recorded this slot: the unique key held
        logger.warning("schedule %s: slot %s was fired already", row.id, plan.fire)
        return None
    problem = await _creator_problem(session, row)
    if problem is not None:
        run.error = problem
        row.paused, row.paused_reason = True, problem
    else:
        await _submit(session, row=row, run=run, settings=settings)
    await session.flush()
    return run


async def _submit(
    session: AsyncSession, *, row: Schedule, run: ScheduleRun, settings: ServerSettings
) -> None:
    try:
        async with session.begin_nested():
            made = await schedule_kinds.submit(
                session,
                kind=ScheduleKind(row.kind),
                body=row.body,
                created_by=row.created_by,
                settings=settings,
            )
    except (errors.HQError, ValueError) as exc:
        run.error = exc.message if isinstance(exc, errors.HQError) else str(exc)
        logger.warning("schedule %s: the run for %s failed: %s", row.id, run.slot_at, run.error)
        return
    run.job_id, run.sweep_id, run.pipeline_id = made.job_id, made.sweep_id, made.pipeline_id
