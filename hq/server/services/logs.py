"""A job's log lines: shipped by the agent holding its lease, read whole or followed live."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.schemas.agents import LogBatch
from hq.schemas.common import JobStatus
from hq.schemas.jobs import LogLine
from hq.server import notify, queue
from hq.server.db.models import Job, JobLog
from hq.server.notify import Disconnected, Notifier
from hq.server.services.jobs import get_job_row

FOLLOW_POLL_SECONDS = 1.0
LOG_PAGE_LINES = 10_000


async def append_logs(
    session: AsyncSession, *, job_id: str, batch: LogBatch, agent_token_id: str | None
) -> int:
    """Store lines of the current attempt (the caller must hold the lease); wakes followers."""
    job = await queue.get_leased_job(
        session, job_id=job_id, lease_token=batch.lease_token, agent_token_id=agent_token_id
    )
    await add_lines(session, job=job, lines=batch.lines)
    await session.flush()
    return len(batch.lines)


async def add_lines(session: AsyncSession, *, job: Job, lines: Sequence[LogLine]) -> None:
    """Lines of ``job``'s current attempt, whose lease the caller checked; wakes followers.
    One executemany, in order (the ids keep it), with no RETURNING: nothing reads them back."""
    if not lines:
        return
    rows = [
        {"job_id": job.id, "attempt": job.attempts, "at": x.at, "stream": x.stream, "text": x.text}
        for x in lines
    ]
    await session.execute(insert(JobLog), rows)
    await notify.mark(session, "logs")


async def _log_lines(session: AsyncSession, *, job_id: str, after_id: int) -> tuple[int, list[str]]:
    """A page of lines after line ``after_id``, each ending in a newline, and the last id."""
    rows = (
        await session.execute(
            select(JobLog.id, JobLog.text)
            .where(JobLog.job_id == job_id, JobLog.id > after_id)
            .order_by(JobLog.id)
            .limit(LOG_PAGE_LINES)
        )
    ).all()
    last = rows[-1][0] if rows else after_id
    return last, [text if text.endswith("\n") else text + "\n" for _, text in rows]


async def read_logs(session: AsyncSession, *, job_id: str) -> str:
    """All of the job's log text (page by page: all of it, not only the first page)."""
    await get_job_row(session, job_id=job_id)
    text: list[str] = []
    last, lines = await _log_lines(session, job_id=job_id, after_id=0)
    while lines:
        text.extend(lines)
        last, lines = await _log_lines(session, job_id=job_id, after_id=last)
    return "".join(text)


async def follow_logs(
    *,
    reader: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    job_id: str,
    disconnected: Disconnected,
) -> AsyncIterator[str]:
    """The job's log text as it arrives, until the job ends (NotFound now, before the stream
    starts, when there is no such job). Each look is a short read-only session of its own
    (``reader``): nothing is held between looks."""
    async with reader() as session:
        await get_job_row(session, job_id=job_id)
    return _follow(reader=reader, notifier=notifier, job_id=job_id, disconnected=disconnected)


async def _follow(
    *,
    reader: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    job_id: str,
    disconnected: Disconnected,
) -> AsyncIterator[str]:
    last = 0
    while not notifier.closing and not await disconnected():
        ev = notifier.watch("logs")  # before the read: no wake-up is missed
        async with reader() as session:
            last, lines = await _log_lines(session, job_id=job_id, after_id=last)
            job_status = await session.scalar(select(Job.status).where(Job.id == job_id))
        if lines:
            yield "".join(lines)
            continue
        if job_status is None or JobStatus(job_status).finished:
            return
        await notifier.wait(ev, FOLLOW_POLL_SECONDS)
