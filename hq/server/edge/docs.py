"""``/docs`` without the internet: Swagger UI's files are served by HQ itself.

FastAPI's default page loads Swagger UI from a public CDN, so it is blank at a site without
internet access. The files come from the ``fastapi-offline`` package (MIT; Swagger UI 5 itself
is Apache-2.0), whose ``static`` folder holds Swagger UI's bundle; only the three files the page
needs are served (``swagger-ui-bundle`` ships Swagger UI 4, which cannot read OpenAPI 3.1).
ReDoc is off.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI, HTTPException
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import FileResponse, HTMLResponse

DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
OPENAPI_URL = "/openapi.json"
DOCS_PATHS = (DOCS_URL, OAUTH2_REDIRECT_URL, OPENAPI_URL)
STATIC_PREFIX = "/docs/static/"
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon.png": "image/png",
}


def install(app: FastAPI) -> None:
    """Serve the docs page and its assets; the app must be made with ``docs_url=None`` and
    ``redoc_url=None``."""
    folder = files("fastapi_offline") / "static"

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{app.title} API",
            oauth2_redirect_url=OAUTH2_REDIRECT_URL,
            swagger_js_url=f"{STATIC_PREFIX}swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PREFIX}swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PREFIX}favicon.png",
        )

    @app.get(OAUTH2_REDIRECT_URL, include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get(STATIC_PREFIX + "{name}", include_in_schema=False)
    async def swagger_asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404)
        return FileResponse(str(folder / name), media_type=ASSETS[name])
