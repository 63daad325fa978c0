"""Migrations run up, down and up again on both databases, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from hq.server import migrations
from hq.server.db.models import Base
from hq.server.db.session import sync_url


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    # db_url arrives migrated to head.
    migrations.downgrade(db_url, "base")
    engine = create_engine(sync_url(db_url))
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrations.upgrade(db_url)
        assert set(Base.metadata.tables) <= set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_models_and_migrations_agree(db_url: str) -> None:
    engine = create_engine(sync_url(db_url))
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert diff == []
