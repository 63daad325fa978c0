"""Login for the Dash app: a signed Flask session cookie, checked before every request.

The ``before_request`` hook refuses every path that is not on a short public list, so routes
added later are covered too. A visitor logs in with an account from ``HQ_DASH_USERS`` (the app
mints, with the admin token, one HQ token of the account's role and keeps it in memory) or pastes
an HQ token (checked against the API and kept in the session cookie, which is signed).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import flask
from werkzeug.wrappers.response import Response

from dash_app.logic.accounts import Account, check_password, safe_next
from dash_app.settings import DashSettings
from hq import errors
from hq.client import HQClient
from hq.schemas.common import Role

logger = logging.getLogger(__name__)

LOGIN_PATH = "/login"
LOGOUT_PATH = "/logout"
PUBLIC_PATHS = frozenset({LOGIN_PATH, "/favicon.ico"})
PUBLIC_PREFIXES = ("/assets/",)  # static CSS only; no data lives there
XHR_PREFIXES = ("/_dash-", "/_reload-hash")
EXTENSION = "hq_dash"
MAX_CLIENTS = 256

LOGIN_HTML = """<!doctype html>
<html><head><title>HQ · log in</title><link rel="stylesheet" href="/assets/style.css"></head>
<body class="login-body"><main class="login-card">
<h1>HQ</h1>
{% if error %}<p class="form-error" id="login-error">{{ error }}</p>{% endif %}
<form method="post" action="/login?next={{ next_url|urlencode }}">
{% if accounts %}
  <h2>Account</h2>
  <label>Username <input name="username" id="login-username" autocomplete="username"></label>
  <label>Password <input name="password" id="login-password" type="password"
         autocomplete="current-password"></label>
  <h2>or an HQ token</h2>
{% else %}
  <h2>HQ token</h2>
  <p class="form-hint">`make run` printed one; the admin token is in $HQ_HOME/admin.token.
  (Accounts with a password: HQ_DASH_USERS.)</p>
{% endif %}
  <label>Token <input name="token" id="login-token" type="password" autocomplete="off"></label>
  <button type="submit" id="login-submit">Log in</button>
</form></main></body></html>"""


@dataclass
class AuthState:
    """Per-process state: the settings and the HQ tokens minted for accounts."""

    settings: DashSettings
    accounts: dict[str, Account] = field(default_factory=dict)
    minted: dict[str, str] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    clients: OrderedDict[str, HQClient] = field(default_factory=OrderedDict)

    def client_for(self, token: str) -> HQClient:
        """The shared client of a token; the least recently used is closed past a bound."""
        with self.lock:
            client = self.clients.pop(token, None) or HQClient(self.settings.url, token)
            self.clients[token] = client
            while len(self.clients) > MAX_CLIENTS:
                _, old = self.clients.popitem(last=False)
                old.close()
            return client

    def account_token(self, username: str) -> str:
        """The HQ token of an account, minted once per process with the admin token."""
        with self.lock:
            if username in self.minted:
                return self.minted[username]
            account = self.accounts[username]
            admin = self.settings.admin_token()
            if not admin:
                raise errors.NotAuthenticated(
                    "accounts need an admin token: set HQ_ADMIN_TOKEN (or HQ_TOKEN), or HQ_HOME "
                    "to the folder holding admin.token"
                )
            with HQClient(self.settings.url, admin) as client:
                created = client.create_token(name=f"dash-{username}", role=account.role)
            self.minted[username] = created.token
            return created.token


def state() -> AuthState:
    value: AuthState = flask.current_app.extensions[EXTENSION]
    return value


def current_user() -> dict[str, Any] | None:
    user = flask.session.get("user")
    return user if isinstance(user, dict) else None


def current_role() -> str | None:
    user = current_user()
    return None if user is None else user.get("role")


def current_token() -> str:
    user = current_user()
    if user is None:
        raise errors.NotAuthenticated("log in first")
    if user.get("kind") == "account":
        return state().account_token(user["name"])
    return str(user["token"])


@contextmanager
def hq_client() -> Iterator[HQClient]:
    """A client with the logged-in user's token.

    Clients are kept per token and shared by requests (httpx clients are thread-safe): building
    one costs about 70 ms (it loads CA bundles), more than most callbacks take otherwise.
    """
    yield state().client_for(current_token())


def token_role(url: str, token: str) -> str:
    """Check a pasted token against the API and find its role. Raises NotAuthenticated."""
    with HQClient(url, token) as client:
        return whoami_role(client)


def whoami_role(client: HQClient) -> str:
    """The app's role for the client's token: admin, submitter, or viewer (publishers read).

    Agent tokens cannot log in: they may only run jobs.
    """
    try:
        me = client.whoami()
    except (errors.NotAuthenticated, errors.Forbidden) as exc:
        raise errors.NotAuthenticated("HQ does not accept this token") from exc
    if me.role == Role.agent:
        raise errors.NotAuthenticated("an agent token cannot log in; use a viewer or submitter")
    return me.role.value if me.role in (Role.admin, Role.submitter) else Role.viewer.value


def _login_page(error: str | None = None, status: int = 200) -> Response:
    next_url = safe_next(flask.request.args.get("next"))
    html = flask.render_template_string(
        LOGIN_HTML, error=error, next_url=next_url, accounts=bool(state().accounts)
    )
    return flask.make_response(html, status)


def login() -> Response:
    if flask.request.method == "GET":
        return _login_page()
    form = flask.request.form
    settings = state().settings
    token = form.get("token", "").strip()
    try:
        if token:
            user = {
                "kind": "token",
                "name": "token user",
                "token": token,
                "role": token_role(settings.url, token),
            }
        else:
            name = form.get("username", "").strip()
            account = state().accounts.get(name)
            if not check_password(account, form.get("password", "")) or account is None:
                return _login_page("Wrong username or password.", 401)
            state().account_token(name)
            user = {"kind": "account", "name": name, "role": account.role}
    except errors.NotAuthenticated as exc:
        logger.warning("login refused: %s", exc.message)
        return _login_page(exc.message, 401)
    except errors.HQError as exc:
        return _login_page(f"HQ could not check the login: {exc.message}", 502)
    flask.session.clear()
    flask.session["user"] = user
    flask.session.permanent = True
    logger.info("login", extra={"user": user["name"], "role": user["role"]})
    return flask.redirect(safe_next(flask.request.args.get("next")))


def logout() -> Response:
    flask.session.clear()
    return flask.redirect(LOGIN_PATH)


def require_login() -> Response | None:
    """Refuse every non-public path to a visitor without a session."""
    path = flask.request.path
    user = current_user()
    if (
        user is not None
        and user.get("kind") == "account"
        and (user.get("name") not in state().accounts)
    ):
        flask.session.clear()  # the account was removed from HQ_DASH_USERS since login
        user = None
    if path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES) or user is not None:
        return None
    if path.startswith(XHR_PREFIXES):
        return flask.make_response({"code": "not_authenticated", "message": "log in first"}, 401)
    full = flask.request.full_path.rstrip("?")
    return flask.redirect(f"{LOGIN_PATH}?next={quote(full, safe='/')}")


def init_auth(server: flask.Flask, settings: DashSettings) -> None:
    server.secret_key = settings.secret_key()
    server.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="hq_dash_session",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.dash_session_hours),
        # Only login and logout set the cookie: a callback answered after a logout must not
        # send the old session back (Flask re-sends permanent sessions on every response).
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    server.extensions[EXTENSION] = AuthState(settings=settings, accounts=settings.accounts)
    server.before_request(require_login)
    server.add_url_rule(LOGIN_PATH, "login", login, methods=["GET", "POST"])
    server.add_url_rule(LOGOUT_PATH, "logout", logout)
