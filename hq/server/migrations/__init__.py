"""Alembic migrations, run by ``hq server`` on start and by ``hq db upgrade``.

On PostgreSQL an upgrade holds a session-level advisory lock (``pg_advisory_lock`` on
``MIGRATION_LOCK_KEY``) on the connection that migrates, for the whole upgrade: replicas that start
together on an empty or an old database take turns, and the ones after the first find the schema
at head and do nothing. Without the lock two of them both ran ``CREATE TABLE`` and one exited with
``UniqueViolation ... pg_type_typname_nsp_index``. SQLite is one host's file: no lock is taken.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, pool, text

from hq.server.db.session import sync_url

HERE = Path(__file__).parent
# A fixed 64-bit key for pg_advisory_lock: "hq-migr" in ASCII. Any value works as long as every
# HQ version uses the same one.
MIGRATION_LOCK_KEY = 0x68712D6D696772


def alembic_config(database_url: str, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection  # env.py migrates on this one
    return config


@contextmanager
def _migration_connection(database_url: str) -> Iterator[Connection]:
    """One connection, holding the advisory lock on PostgreSQL until it is closed."""
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name != "postgresql":
                yield connection
                return
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            connection.commit()  # session-level: the lock outlives this transaction
            try:
                yield connection
            finally:
                connection.rollback()
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> None:
    with _migration_connection(database_url) as connection:
        command.upgrade(alembic_config(database_url, connection), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    with _migration_connection(database_url) as connection:
        command.downgrade(alembic_config(database_url, connection), revision)


def current(database_url: str) -> str | None:
    """The revision the database is at (None: never migrated)."""
    engine = create_engine(sync_url(database_url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision this version of HQ ships."""
    revision = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert revision is not None
    return revision
