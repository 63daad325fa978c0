"""Alembic migrations, run by ``hq server`` on start (see ``hq.server.migrations.run``)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from hq.server.db.session import sync_url

HERE = Path(__file__).parent


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
