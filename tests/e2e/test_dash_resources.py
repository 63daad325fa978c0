"""The script page's memory, CPUs and timeout fields, in Chromium against a real HQ server.

No agent: the argv_echo stand-in's manifest (ceilings: max_memory 256m, max_cpus 2) is published
with a made-up digest, so jobs stay queued. Above a ceiling the page shows HQ's 422 naming it and
nothing is queued; within it the job carries the limits typed.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from hq import imaging
from tests.fixtures.api import count_rows
from tests.fixtures.browser import DashFactory, field
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ARGV_ECHO = Path(__file__).resolve().parents[1] / "scripts" / "argv_echo"


@pytest.fixture
def hq(server_factory: ServerFactory) -> LiveServer:
    server = server_factory(db="sqlite")
    with server.client("publisher") as publisher:
        publisher.publish_script_version(
            name="argv-echo",
            image="hq-test/argv-echo:form",
            digest="sha256:" + "a" * 64,
            manifest=imaging.load_manifest(ARGV_ECHO),
        )
    return server


def test_the_submit_form_raises_resources_up_to_the_ceiling_and_shows_the_422_above_it(
    hq: LiveServer, dash_factory: DashFactory, page: Page
) -> None:
    dash = dash_factory(hq)
    dash.login(page, "sam")
    page.goto(f"{dash.url}/scripts/argv-echo")
    expect(page.locator("#script-memory")).to_have_attribute("placeholder", "128m, at most 256m")
    page.fill(field("value", "label"), "from the form")
    page.fill("#script-memory", "8g")
    page.locator("#script-submit").click()
    expect(page.locator("#script-message")).to_contain_text(
        "memory 8g is above this script's max_memory 256m"
    )
    assert count_rows(hq, "jobs") == 0
    page.fill("#script-memory", "lots")
    page.locator("#script-submit").click()
    expect(page.locator("#script-message")).to_contain_text("must look like 512m")
    page.fill("#script-memory", "256m")
    page.fill("#script-cpus", "2")
    page.locator("#script-submit").click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]{36}$"))
    with hq.client("viewer") as viewer:
        job = viewer.get_job(page.url.rsplit("/", 1)[1])
    assert job.resources["memory"] == "256m" and job.resources["cpus"] == 2
    assert job.params["label"] == "from the form"
