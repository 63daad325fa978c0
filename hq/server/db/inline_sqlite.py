"""SQLite on the event loop's own thread: aiosqlite's interface, as SQLAlchemy's ``aiosqlite``
dialect uses it, without aiosqlite's thread.

aiosqlite runs every call (a cursor, an execute, a fetch, a close) on a thread of its own and
wakes the loop for each answer: on a 2-CPU machine that is about 0.3 ms a statement, several
times what SQLite itself takes, and a job's submit, claim and complete run some 25 statements.
Here each call runs at once, in place. What makes that safe is that nothing here ever waits for
SQLite's lock while holding the loop: in-process writers take turns on an ``asyncio.Lock``
before ``BEGIN IMMEDIATE`` (``hq.server.db.session``), and readers never wait in WAL mode. Only
another process writing the same file (a second server, a script) can make a ``BEGIN
IMMEDIATE`` wait, in SQLite's busy handler, holding the loop that long: one server per SQLite
file is what the embedded default is for.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

Params = Sequence[Any] | dict[str, Any]


class _Calls:
    """The queue SQLAlchemy's adapter puts a call on (to set the isolation level): run it now."""

    def put_nowait(self, item: tuple[asyncio.Future[Any] | None, Any]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed to the awaiting side, as aiosqlite does
            if future is not None:
                future.set_exception(exc)
            return
        if future is not None:
            future.set_result(result)


class InlineCursor:
    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Params = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, parameters: Iterable[Params]) -> InlineCursor:
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(self._cursor.arraysize if size is None else size)

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()


class InlineConnection:
    """One ``sqlite3`` connection behind aiosqlite's ``Connection`` methods."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # None once closed, as in aiosqlite
        self._tx = _Calls()

    @classmethod
    async def open(cls, database: str, *, timeout: float) -> InlineConnection:
        return cls(sqlite3.connect(database, timeout=timeout, check_same_thread=False))

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Params = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()
