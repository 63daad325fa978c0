"""`hq dash`: serve the Dash app (waitress, a production WSGI server) against an HQ server."""

from __future__ import annotations

import logging

import click

from hq.cli.common import handle_errors

DEFAULT_THREADS = 16


@click.command("dash")
@click.option("--host", default=None, help="address to listen on [HQ_DASH_HOST, 127.0.0.1]")
@click.option("--port", type=int, default=None, help="port to listen on [HQ_DASH_PORT, 8050]")
@click.option(
    "--threads",
    type=int,
    default=DEFAULT_THREADS,
    show_default=True,
    help="worker threads (each callback holds one while it waits for HQ)",
)
@handle_errors
def dash(host: str | None, port: int | None, threads: int) -> None:
    """Serve the Dash app: jobs, results and charts, talking to HQ_URL.

    Log in with an account from HQ_DASH_USERS ("user:password:role,...", tokens minted with
    HQ_ADMIN_TOKEN, HQ_TOKEN or $HQ_HOME/admin.token) or with a pasted HQ token.
    """
    import waitress  # type: ignore[import-untyped]
    from pydantic import ValidationError

    from dash_app.app import create_app
    from dash_app.settings import get_settings

    try:
        settings = get_settings()
    except ValidationError as exc:
        raise click.ClickException(f"bad Dash settings: {exc}") from exc
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(settings)
    bind_host, bind_port = host or settings.dash_host, port or settings.dash_port
    click.echo(f"HQ dash on http://{bind_host}:{bind_port} (HQ at {settings.url})", err=True)
    waitress.serve(
        app.server,
        host=bind_host,
        port=bind_port,
        threads=threads,
        ident="hq-dash",
        channel_timeout=120,
    )
