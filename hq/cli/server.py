"""`hq server`: the API server (uvicorn), one process or several (``--workers``)."""

from __future__ import annotations

import logging

import click


@click.command()
@click.option("--host", default=None, help="bind address (HQ_HOST, default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (HQ_PORT, default 8080)")
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="server processes sharing the port (HQ_WORKERS, default 1; more needs PostgreSQL)",
)
def server(host: str | None, port: int | None, workers: int | None) -> None:
    """Run the HQ API server (migrates the database first)."""
    from hq.server import serving
    from hq.server.settings import ServerSettings

    given = (("host", host), ("port", port), ("workers", workers))
    settings = ServerSettings(**{k: v for k, v in given if v is not None})  # type: ignore[arg-type]
    if settings.workers > 1 and not settings.resolved_database_url.startswith("postgresql"):
        raise click.UsageError(
            f"--workers {settings.workers} (HQ_WORKERS) needs PostgreSQL: SQLite takes one "
            "writer at a time, so more server processes would only wait for each other. Set "
            "HQ_DATABASE_URL=postgresql://... or run one worker."
        )
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    serving.serve(settings)
