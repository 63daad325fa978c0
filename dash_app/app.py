"""The Dash app: create_app(settings) builds the Flask server, login, pages and the shell."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import dash
import flask
from dash import dcc, html
from werkzeug.wrappers.response import Response

from dash_app import ids
from dash_app.auth import current_user, hq_client, init_auth
from dash_app.settings import DashSettings

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
NAV = (
    ("Jobs", "/jobs"),
    ("Pipelines", "/pipelines"),
    ("Scripts", "/scripts"),
    ("Datasets", "/datasets"),
    ("Compare", "/compare"),
    ("Schedules", "/schedules"),
    ("Agents", "/agents"),
    ("Webhooks", "/webhooks"),
)


def shell() -> Any:
    """The frame around every page: navigation, who is logged in, and the page itself."""
    user = current_user() or {}
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh="callback-nav"),
            html.Header(
                className="nav",
                children=[
                    html.A("HQ", href="/jobs", className="brand"),
                    *[dcc.Link(label, href=href, className="nav-link") for label, href in NAV],
                    html.Span(className="spacer"),
                    html.Span(
                        f"{user.get('name', '')} ({user.get('role', '')})",
                        id=ids.NAV_USER,
                        className="muted",
                    ),
                    html.A("Log out", href="/logout", className="nav-link"),
                ],
            ),
            html.Main(dash.page_container, className="page"),
        ]
    )


def artifact_download(job_id: str, path: str) -> Response:
    """Redirect to a fresh presigned URL, so a link on a page never holds an expired one."""
    with hq_client() as client:
        return flask.redirect(client.artifact_url(job_id, path))


def dataset_download(name: str, version: int) -> Response:
    with hq_client() as client:
        return flask.redirect(client.dataset_download_url(name, version))


def home_redirect() -> Response | None:
    """The bare root opens the jobs page (after the login check, which runs first)."""
    return flask.redirect("/jobs") if flask.request.path == "/" else None


def create_app(settings: DashSettings) -> dash.Dash:
    """The app for one HQ server. Never built at import time; serve ``app.server`` (WSGI)."""
    server = flask.Flask(__name__)
    init_auth(server, settings)
    server.before_request(home_redirect)
    server.add_url_rule(
        "/download/jobs/<job_id>/artifacts/<path:path>", "artifact", artifact_download
    )
    server.add_url_rule("/download/datasets/<name>/<int:version>", "dataset", dataset_download)
    app = dash.Dash(
        __name__,
        server=server,  # type: ignore[arg-type]
        use_pages=True,
        pages_folder=str(HERE / "pages"),
        assets_folder=str(HERE / "assets"),
        title="HQ",
        suppress_callback_exceptions=True,
    )
    app.layout = shell
    warm_up()
    return app


def warm_up() -> None:
    """Build one figure of each kind now: plotly loads its validators on first use (~1 s), which
    would otherwise land on the first visitor's compare page."""
    from dash_app.logic.compare import box_figure, parallel_figure
    from dash_app.logic.fit import scatter_with_fit

    rows = [{"x": 1.0, "m": 1.0}, {"x": 2.0, "m": 3.0}]
    scatter_with_fit(rows, "x", "m")
    box_figure({"x=1": [1.0]}, "m")
    parallel_figure(rows, ["x"], "m")
