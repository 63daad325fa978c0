"""`hq db`: the database's migrations, run by an operator (``hq server`` also runs them on start).

Upgrade before rolling new replicas: ``hq db upgrade`` with the new version's image, then restart
the replicas one at a time. It takes the same advisory lock as ``hq server``, so it may run while
replicas start.
"""

from __future__ import annotations

import click


def _database_url(database_url: str | None) -> str:
    from hq.server.settings import ServerSettings

    overrides = {"database_url": database_url} if database_url else {}
    return ServerSettings(**overrides).resolved_database_url  # type: ignore[arg-type]


DATABASE_URL_OPTION = click.option(
    "--database-url", default=None, help="the database (HQ_DATABASE_URL, default SQLite in HQ_HOME)"
)


@click.group()
def db() -> None:
    """The database's schema: upgrade it, or say where it is."""


@db.command()
@DATABASE_URL_OPTION
@click.option("--revision", default="head", show_default=True, help="the revision to reach")
def upgrade(database_url: str | None, revision: str) -> None:
    """Migrate the database to this version of HQ (a no-op when it is there already)."""
    from hq.server import migrations

    url = _database_url(database_url)
    before = migrations.current(url)
    migrations.upgrade(url, revision)
    after = migrations.current(url)
    if before == after:
        click.echo(f"already at {after}")
    else:
        click.echo(f"upgraded {before or 'an empty database'} -> {after}")


@db.command()
@DATABASE_URL_OPTION
def current(database_url: str | None) -> None:
    """Print the database's revision and this version's head (exit 1 when they differ)."""
    from hq.server import migrations

    url = _database_url(database_url)
    at, head = migrations.current(url), migrations.head()
    click.echo(f"database: {at or 'not migrated'}\nthis HQ:  {head}")
    if at != head:
        raise SystemExit(1)
