"""Retryable database errors (503) are known by their code, never by their message."""

from __future__ import annotations

import sqlite3
import uuid

import psycopg
import pytest
from psycopg import errors as pg_errors
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from hq.server.db.errors import is_retryable


def _wrapped(orig: Exception) -> DBAPIError:
    return OperationalError("SELECT 1", None, orig)


def _sqlite_error(code: int, name: str, message: str) -> sqlite3.OperationalError:
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorcode = code
    exc.sqlite_errorname = name
    return exc


def test_a_real_sqlite_lock_is_retryable() -> None:
    """Two connections on one shared-cache database: the second cannot write (in memory)."""
    uri = f"file:hq-{uuid.uuid4().hex}?mode=memory&cache=shared"
    holder = sqlite3.connect(uri, uri=True, isolation_level=None)
    other = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=0)
    try:
        holder.execute("CREATE TABLE t (x INTEGER)")
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("INSERT INTO t VALUES (1)")
        with pytest.raises(sqlite3.OperationalError) as caught:
            other.execute("INSERT INTO t VALUES (2)")
    finally:
        other.close()
        holder.close()
    assert is_retryable(_wrapped(caught.value))


@pytest.mark.parametrize(
    ("code", "name"),
    [(5, "SQLITE_BUSY"), (517, "SQLITE_BUSY_SNAPSHOT"), (6, "SQLITE_LOCKED")],
)
def test_sqlite_busy_and_locked_are_retryable_by_code(code: int, name: str) -> None:
    # The message says nothing of a lock: only the code decides.
    assert is_retryable(_wrapped(_sqlite_error(code, name, "something went wrong")))


def test_a_sqlite_error_that_mentions_locked_but_is_not_a_lock_is_not_retryable() -> None:
    exc = _sqlite_error(1, "SQLITE_ERROR", 'no such table: "locked"')
    assert not is_retryable(_wrapped(exc))


@pytest.mark.parametrize(
    "sqlstate", ["08006", "40001", "40P01", "53300", "55P03", "57P01", "57014", "58030"]
)
def test_postgres_connection_and_lock_states_are_retryable(sqlstate: str) -> None:
    assert is_retryable(_wrapped(pg_errors.lookup(sqlstate)()))


@pytest.mark.parametrize("sqlstate", ["23505", "42P01", "22P02"])
def test_postgres_bugs_are_not_retryable(sqlstate: str) -> None:
    orig = pg_errors.lookup(sqlstate)()
    assert not is_retryable(IntegrityError("INSERT", None, orig))


def test_postgres_unreachable_is_retryable() -> None:
    """A connection refused carries no SQLSTATE: the server never answered."""
    assert is_retryable(_wrapped(psycopg.OperationalError("connection refused")))


def test_an_invalidated_connection_is_retryable() -> None:
    exc = DBAPIError("SELECT 1", None, Exception("gone"), connection_invalidated=True)
    assert is_retryable(exc)


def test_a_pool_with_no_free_connection_is_retryable() -> None:
    """Every connection is taken (each waiting on a database that does not answer): 503."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import TimeoutError as PoolTimeout
    from sqlalchemy.pool import QueuePool

    engine = create_engine(
        "sqlite://", poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=0.05
    )
    with engine.connect(), pytest.raises(PoolTimeout) as caught:
        engine.connect()
    engine.dispose()
    assert is_retryable(caught.value)
