"""Alembic environment: migrates on the connection ``hq.server.migrations`` hands over (the one
that holds the advisory lock), or on a sync engine of its own; models' metadata as the target."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine, pool

from hq.server.db.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        connection.commit()
        return
    url = config.get_main_option("sqlalchemy.url")
    assert url
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as own:
        _run(own)
    engine.dispose()


run_migrations_online()
