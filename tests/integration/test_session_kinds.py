"""The two kinds of session (``hq.server.db.session``) on both databases: a reader refuses to
write; on SQLite, which runs on the loop's thread, writers take turns without ever holding up
the loop, readers read beside a writer, and a writer's turn comes back however its transaction
ends."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hq.server.db.models import Token
from hq.server.db.session import ReaderWrote, create_reader


def _token(name: str) -> Token:
    return Token(id=name, name=name, role="viewer", hash=name.ljust(64, "0"))


async def test_a_reader_refuses_to_write_and_leaves_nothing(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    reader = create_reader(engine)
    async with reader() as session:
        session.add(_token("flushed"))
        with pytest.raises(ReaderWrote):
            await session.flush()
    async with reader() as session:
        with pytest.raises(ReaderWrote):
            await session.execute(
                insert(Token).values(id="core", name="core", role="viewer", hash="c" * 64)
            )
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Token)) == 0


async def test_sqlite_writers_take_turns_while_the_loop_and_readers_go_on(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer turns are SQLite's")
    reader = create_reader(engine)
    order: list[str] = []
    first_holds = asyncio.Event()

    async def first() -> None:
        async with sessionmaker() as session, session.begin():
            session.add(_token("first"))
            await session.flush()
            first_holds.set()
            await asyncio.sleep(0.3)  # holds SQLite's write lock, awaiting something else
            order.append("first commits")

    async def second() -> None:
        await first_holds.wait()
        async with sessionmaker() as session, session.begin():
            session.add(_token("second"))
            await session.flush()  # the session begins lazily: here, once the turn is its
            order.append("second writes")

    async def ticks() -> int:
        count = 0
        await first_holds.wait()
        deadline = time.monotonic() + 0.25
        while time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            count += 1
        return count

    async def read_meanwhile() -> int | None:
        await first_holds.wait()
        async with reader() as session:
            return await session.scalar(select(func.count()).select_from(Token))

    _, _, count, seen = await asyncio.gather(first(), second(), ticks(), read_meanwhile())
    assert order == ["first commits", "second writes"]
    assert count >= 10, f"the loop ticked {count} times in 0.25 s: a writer held it up"
    assert seen == 0  # the reader did not wait for the writer, and saw only what was committed
    async with reader() as session:
        assert await session.scalar(select(func.count()).select_from(Token)) == 2


async def test_sqlite_a_writer_that_fails_or_is_cancelled_gives_its_turn_back(
    sessionmaker: async_sessionmaker[AsyncSession], db_url: str
) -> None:
    if not db_url.startswith("sqlite"):
        pytest.skip("the writer turns are SQLite's")
    with pytest.raises(RuntimeError):
        async with sessionmaker() as session, session.begin():
            session.add(_token("rolled-back"))
            await session.flush()
            raise RuntimeError("the route failed mid-transaction")

    async def holds_forever() -> None:
        async with sessionmaker() as session, session.begin():
            session.add(_token("cancelled"))
            await session.flush()
            await asyncio.sleep(60)

    task = asyncio.create_task(holds_forever())
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(5):  # the turn is free again: this writer does not wait
        async with sessionmaker() as session, session.begin():
            session.add(_token("after"))
    async with sessionmaker() as session:
        names = (await session.scalars(select(Token.name))).all()
    assert names == ["after"]
