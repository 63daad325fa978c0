"""`hq server`: the API server (uvicorn)."""

from __future__ import annotations

import logging
import socket

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
    app = create_app(settings)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            # Answer parked long polls (claims, ?wait, log follows) before uvicorn waits for
            # requests to end: they would hold the stop for its whole grace period, then be
            # cancelled with an error. Agents and followers reconnect.
            notifier = getattr(app.state, "notifier", None)
            if notifier is not None:
                notifier.close()
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        timeout_graceful_shutdown=SHUTDOWN_GRACE_SECONDS,  # a bound for anything else
    )
    Server(config).run()
