"""The login page offers what can log in: account fields only when HQ_DASH_USERS has accounts
(`make run` sets none: a newcomer would try a username and password that cannot work)."""

from __future__ import annotations

from pathlib import Path

import flask
import pytest

from dash_app.auth import init_auth
from dash_app.settings import DashSettings


def login_page(tmp_path: Path, users: str | None) -> str:
    server = flask.Flask(__name__)
    settings = DashSettings(
        home=tmp_path, dash_users=users, dash_secret_key="s" * 32, url="http://127.0.0.1:9"
    )
    init_auth(server, settings)
    answer = server.test_client().get("/login")
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


@pytest.mark.parametrize("users", [None, ""])
def test_without_accounts_the_page_asks_for_a_token_only(tmp_path: Path, users: str | None) -> None:
    page = login_page(tmp_path, users)
    assert 'id="login-token"' in page
    assert 'id="login-username"' not in page and 'id="login-password"' not in page


def test_with_accounts_the_page_offers_both(tmp_path: Path) -> None:
    page = login_page(tmp_path, "sam:correct-horse-battery:viewer")
    assert 'id="login-username"' in page and 'id="login-token"' in page
