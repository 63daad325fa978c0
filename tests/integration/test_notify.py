"""Wake-ups fire when the outermost transaction commits: never at a SAVEPOINT's release (the rows
are not visible yet), never after a rollback; on PostgreSQL the NOTIFY reaches other listeners."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq.server import notify
from hq.server.notify import CHANNEL, Notifier


async def test_a_topic_marked_in_a_savepoint_fires_at_the_outer_commit_only(
    sessionmaker: async_sessionmaker[AsyncSession], notifier: Notifier
) -> None:
    waiters = [notifier.claims.join() for _ in range(3)]
    async with sessionmaker() as session, session.begin():
        async with session.begin_nested():
            await notify.mark(session, "queued")
            await notify.mark(session, "queued")
        assert not any(w.woken for w in waiters), "woken at a savepoint's release: too early"
    assert [w.woken for w in waiters] == [True, True, False]  # two jobs queued: two claims


async def test_a_rolled_back_transaction_fires_nothing(
    sessionmaker: async_sessionmaker[AsyncSession], notifier: Notifier
) -> None:
    ev = notifier.watch("done")
    async with sessionmaker() as session:
        async with session.begin():
            await notify.mark(session, "done")
            await session.rollback()
        async with session.begin():  # the next transaction on the session starts clean
            pass
    assert not ev.is_set()


async def test_postgresql_listeners_hear_each_topic_once_at_commit_with_the_origin(
    pg_url: str,
) -> None:
    from hq.server import migrations
    from hq.server.db.session import create_engine, create_sessionmaker

    migrations.upgrade(pg_url)
    engine = create_engine(pg_url)
    here = Notifier(database_url=None)
    maker = create_sessionmaker(engine)
    maker.configure(info={notify.NOTIFIER_KEY: here})
    libpq = pg_url.replace("postgresql+psycopg://", "postgresql://", 1)
    try:
        async with await psycopg.AsyncConnection.connect(libpq, autocommit=True) as listener:
            await listener.execute(f"LISTEN {CHANNEL}")
            async with maker() as session, session.begin():
                async with session.begin_nested():
                    await notify.mark(session, "queued")
                await notify.mark(session, "queued")
                await notify.mark(session, "done")
            heard: list[str] = []

            async def collect() -> None:
                async for note in listener.notifies():
                    heard.append(note.payload)
                    if len(heard) == 2:
                        return

            await asyncio.wait_for(collect(), 5)
        assert sorted(heard) == [f"done:{here.origin}", f"queued:{here.origin}:2"]
    finally:
        await engine.dispose()
