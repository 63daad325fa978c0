"""Engines and sessions for PostgreSQL (psycopg 3) and SQLite.

Two kinds of session share one engine: the read-write one, and a reader for requests that only
read (a GET, a wait's looks, a token's lookup). On SQLite a read-write transaction begins with
``BEGIN IMMEDIATE`` (one writer at a time); a reader's with a plain ``BEGIN``, which in WAL mode
neither waits for the writer nor holds it up, so a page of jobs or a waiting submit does not
queue behind claims. A reader that tries to write raises (on both databases), so a route cannot
become a writer by accident.

SQLite runs on the event loop's thread (``hq.server.db.inline_sqlite``); its writers in this
process take turns on the engine's ``asyncio.Lock`` before ``BEGIN IMMEDIATE``, and give it back
as their transaction ends (commit, rollback, or the pool resetting or dropping the connection).
"""

from __future__ import annotations

import asyncio
import sqlite3
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.util import await_

from hq.server.db.inline_sqlite import InlineConnection

SQLITE_BUSY_TIMEOUT_MS = 30_000
READ_ONLY = "hq.read_only"  # an execution option of the reader's engine, and a session.info key
WRITING = "hq.writing"  # in a connection's info while it holds the engine's writer turn


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An async engine. On SQLite every writing transaction is ``BEGIN IMMEDIATE``: one writer at
    a time, which is what makes the SQLite claim correct (SQLAlchemy drops FOR UPDATE there)."""
    if is_sqlite(url):
        db_path = make_url(url).database or ":memory:"
        if db_path != ":memory:":
            Path(db_path).parent.mkdir(parents=True, exist_ok=True)
        opener = partial(InlineConnection.open, db_path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
        engine = create_async_engine(url, async_creator=opener)
        _sqlite_pragmas(engine)
        _sqlite_writer_turns(engine)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (SQLAlchemy's documented aiosqlite recipe).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def _take(turn: asyncio.Lock) -> None:
    """The writer turn, within SQLite's own busy timeout (as a wait for its lock would)."""
    if not turn.locked():
        await_(turn.acquire())
        return
    try:
        await_(asyncio.wait_for(turn.acquire(), SQLITE_BUSY_TIMEOUT_MS / 1000))
    except TimeoutError:
        raise sqlite3.OperationalError("database is locked (no writer turn in time)") from None


def _sqlite_writer_turns(engine: AsyncEngine) -> None:
    """Writers take turns on an ``asyncio.Lock``: SQLite's own lock is only ever asked for by
    the one holding the turn, so no call waits for it on the loop's thread (a waiting call would
    hold up the very task that holds it)."""
    turn = asyncio.Lock()

    def give_back(info: dict[str, Any]) -> None:
        # At a commit or rollback this runs just before it is sent; both run in place (nothing
        # yields to the loop), so the next writer begins only after it.
        if info.pop(WRITING, False):
            turn.release()

    @event.listens_for(engine.sync_engine, "begin")
    def _begin(conn: Any) -> None:
        if conn.get_execution_options().get(READ_ONLY, False):
            conn.exec_driver_sql("BEGIN")
            return
        _take(turn)
        conn.info[WRITING] = True
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            give_back(conn.info)
            raise

    @event.listens_for(engine.sync_engine, "commit")
    @event.listens_for(engine.sync_engine, "rollback")
    def _end(conn: Any) -> None:
        give_back(conn.info)

    @event.listens_for(engine.sync_engine.pool, "reset")
    def _reset(_dbapi: Any, record: Any, _state: Any) -> None:
        give_back(record.info)

    @event.listens_for(engine.sync_engine.pool, "invalidate")
    def _invalidated(_dbapi: Any, record: Any, _exc: Any) -> None:
        give_back(record.info)

    @event.listens_for(engine.sync_engine.pool, "close")
    def _closed(_dbapi: Any, record: Any) -> None:
        give_back(record.info)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def create_reader(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that only read (see the module's docstring)."""
    return async_sessionmaker(
        engine.execution_options(**{READ_ONLY: True}),
        expire_on_commit=False,
        info={READ_ONLY: True},
    )


class ReaderWrote(RuntimeError):
    """A reader session was asked to write: the caller must use a read-write session."""


@event.listens_for(Session, "do_orm_execute")
def _reader_executes(state: ORMExecuteState) -> None:
    writes = state.is_insert or state.is_update or state.is_delete
    if writes and state.session.info.get(READ_ONLY):
        raise ReaderWrote(f"a read-only session cannot run {state.statement!s:.80}")


@event.listens_for(Session, "before_flush")
def _reader_flushes(session: Session, _context: Any, _instances: Any) -> None:
    if session.info.get(READ_ONLY) and (session.new or session.dirty or session.deleted):
        raise ReaderWrote("a read-only session cannot flush changes")


def sync_url(url: str) -> str:
    """The same database through a sync driver, for Alembic."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return parsed.set(drivername="sqlite").render_as_string(hide_password=False)
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
