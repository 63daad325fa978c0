"""`hq server`: the API server (uvicorn)."""

from __future__ import annotations

import logging

import click

SHUTDOWN_GRACE_SECONDS = 3


@click.command()
@click.option("--host", default=None, help="bind address (HQ_HOST, default 127.0.0.1)")
@click.option("--port", type=int, default=None, help="port (HQ_PORT, default 8080)")
def server(host: str | None, port: int | None) -> None:
    """Run the HQ API server (migrates the database first)."""
    import uvicorn

    from hq.server.app import create_app
    from hq.server.settings import ServerSettings

    overrides = {k: v for k, v in (("host", host), ("port", port)) if v is not None}
    settings = ServerSettings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        # Long polls and log follows would hold a shutdown for their whole wait; agents and
        # followers reconnect, so a few seconds' grace is enough.
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,
    )
