"""The Dash app in Debian's Chromium, against a real HQ server (PostgreSQL) and a real agent.

Screenshots of every page land in test-artifacts/dash/<test>/.
"""

from __future__ import annotations

import re

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.browser import DashFactory, DashServer, Shoot
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PROTECTED_ROUTES = (
    "/",
    "/jobs",
    "/jobs/0123",
    "/scripts",
    "/scripts/linear-fit",
    "/datasets",
    "/datasets/points",
    "/compare",
    "/compare?sweep=abc",
    "/agents",
    "/download/jobs/0123/artifacts/residuals.csv",
    "/download/datasets/points/1",
    "/a-page-added-later",
    "/assets/../jobs",
)


@pytest.fixture
def hq(server_factory: ServerFactory) -> LiveServer:
    return server_factory(db="postgresql")


@pytest.fixture
def dash(hq: LiveServer, dash_factory: DashFactory) -> DashServer:
    return dash_factory(hq)


def test_a_visitor_without_login_is_sent_to_the_login_page_on_every_route(
    dash: DashServer, page: Page, shoot: Shoot
) -> None:
    for route in PROTECTED_ROUTES:
        page.goto(f"{dash.url}{route}")
        assert re.search(r"/login(\?|$)", page.url), f"{route} was served without a login"
        expect(page.locator("#login-submit")).to_be_visible()
    shoot(page, "login")
    # Dash's own endpoints refuse too, so no data leaks through a callback
    with httpx.Client(base_url=dash.url) as http:
        assert http.get("/_dash-layout").status_code == 401
        assert http.get("/_dash-dependencies").status_code == 401
        update = http.post("/_dash-update-component", json={"output": "x.children"})
        assert update.status_code == 401


def test_login_refuses_a_wrong_password_and_a_bad_token(dash: DashServer, page: Page) -> None:
    page.goto(f"{dash.url}/login")
    page.fill("#login-username", "sam")
    page.fill("#login-password", "not-the-password")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_have_text("Wrong username or password.")
    page.fill("#login-token", "hq_not-a-real-token")
    page.click("#login-submit")
    expect(page.locator("#login-error")).to_contain_text("does not accept this token")
    page.goto(f"{dash.url}/jobs")
    assert "/login" in page.url


def test_a_pasted_hq_token_logs_in_and_logout_ends_the_session(
    hq: LiveServer, dash: DashServer, page: Page
) -> None:
    page.goto(f"{dash.url}/login?next=/agents")
    page.fill("#login-token", hq.token("viewer"))
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/agents$"))
    expect(page.locator("h1")).to_have_text("Agents")
    page.goto(f"{dash.url}/logout")
    page.goto(f"{dash.url}/agents")
    assert "/login" in page.url


def test_a_viewer_sees_but_cannot_submit_or_drain(dash: DashServer, page: Page) -> None:
    dash.login(page, "val")
    expect(page.locator("#nav-user")).to_have_text("val (viewer)")
    page.goto(f"{dash.url}/agents")
    expect(page.locator("#agents-drain")).to_be_disabled()
    page.goto(f"{dash.url}/datasets")
    expect(page.locator("#dataset-upload-name")).to_be_disabled()


def test_login_sends_the_user_back_only_to_a_local_page(dash: DashServer, page: Page) -> None:
    page.goto(f"{dash.url}/login?next=//evil.example/x")
    page.fill("#login-username", "sam")
    page.fill("#login-password", "sam-password")
    page.click("#login-submit")
    page.wait_for_url(re.compile(r".*/jobs$"))
    assert page.url.startswith(dash.url)
