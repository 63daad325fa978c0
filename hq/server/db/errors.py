"""Which database errors are worth a retry (the API answers 503 with Retry-After), by code.

Decided on the driver's error code, never on the message text: SQLite's result code
(``sqlite_errorcode``, Python 3.11+) and PostgreSQL's SQLSTATE, as Prefect's server does
(``is_client_retryable_exception``: SQLITE_BUSY by ``sqlite_errorname``; asyncpg's classes for
query cancelled, connection gone, cannot connect now). Anything else is a bug: 500.
"""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout

# SQLite primary result codes (the low byte of an extended code such as SQLITE_BUSY_SNAPSHOT):
# another connection holds the lock ("database is locked", "database table is locked").
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_RETRYABLE_CODES = frozenset({SQLITE_BUSY, SQLITE_LOCKED})

# PostgreSQL SQLSTATE classes (the first two characters) and codes worth a retry.
PG_RETRYABLE_CLASSES = frozenset(
    {
        "08",  # connection exception: the connection failed or went away
        "40",  # transaction rollback: serialization failure, deadlock detected
        "53",  # insufficient resources: too many connections, out of memory or disk
        "57",  # operator intervention: shutdown, cannot connect now, query cancelled
        "58",  # system error: an I/O error in the server
    }
)
PG_RETRYABLE_STATES = frozenset(
    {
        "55P03",  # lock_not_available: a lock timeout
        "55006",  # object_in_use
    }
)


def is_retryable(exc: BaseException) -> bool:
    """Connection loss, lock timeouts and a pool with no free connection (every connection
    waiting on a database that does not answer) are worth a retry; anything else is a bug."""
    if isinstance(exc, PoolTimeout):
        return True
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    orig = exc.orig
    if isinstance(orig, sqlite3.Error):
        code = getattr(orig, "sqlite_errorcode", None)
        return isinstance(code, int) and code & 0xFF in SQLITE_RETRYABLE_CODES
    if isinstance(orig, psycopg.Error):
        state = orig.sqlstate
        if state is None:  # no answer from the server at all: it could not be reached
            return isinstance(orig, psycopg.OperationalError)
        return state[:2] in PG_RETRYABLE_CLASSES or state in PG_RETRYABLE_STATES
    return False
