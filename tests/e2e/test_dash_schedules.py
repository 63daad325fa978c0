"""The schedules page in Chromium against a real HQ server (SQLite): the list with its next
slot, paused state and last run; a schedule's runs linking to the jobs they submitted; pause and
resume from the page."""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import Page, expect

from tests.fixtures.api import publish_fake, unique_name, unique_queue
from tests.fixtures.browser import DashFactory
from tests.fixtures.server import ServerFactory

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = "#schedules-grid .ag-center-cols-container .ag-row"


def test_the_schedules_page_lists_runs_links_jobs_and_pauses(
    server_factory: ServerFactory, dash_factory: DashFactory, page: Page
) -> None:
    hq = server_factory(db="sqlite")
    script = publish_fake(hq.client("publisher")).script
    owner = hq.client("submitter")
    name = unique_name("nightly")
    every = owner.create_schedule(
        name=name,
        kind="job",
        body={"script": script, "params": {"n": 2}, "queue": unique_queue()},
        interval_s=1,
    )
    deadline = time.monotonic() + 10
    while not owner.schedule_runs(every.id).items and time.monotonic() < deadline:
        time.sleep(0.2)
    dash = dash_factory(hq)
    dash.login(page, "ada")
    page.goto(f"{dash.url}/schedules")
    row = page.locator(ROWS).filter(has_text=name)
    expect(row).to_have_count(1)
    expect(row.locator("[col-id='when']")).to_have_text("every 1 s")
    expect(row.locator("[col-id='last_result']")).to_contain_text("job ")
    expect(row.locator("[col-id='paused']")).to_have_text("")
    expect(row.locator("[col-id='next_at']")).to_have_text(re.compile(r"\d{4}-\d\d-\d\d \d\d:"))
    row.locator("[col-id='name']").click()
    link = page.locator("#schedules-runs a").first
    expect(link).to_contain_text("job ")
    href = link.get_attribute("href")
    assert href is not None and re.fullmatch(r"/jobs/[0-9a-f-]{36}", href)
    job_ids = {r.job_id for r in owner.schedule_runs(every.id, limit=1000).items}
    assert href.rsplit("/", 1)[1] in job_ids

    page.locator("#schedules-pause").click()
    expect(page.locator("#schedules-message")).to_contain_text(f"{name} paused")
    assert owner.get_schedule(every.id).paused
    expect(row.locator("[col-id='paused']")).to_have_text("paused")
    page.locator("#schedules-resume").click()
    expect(page.locator("#schedules-message")).to_contain_text(f"{name} resumed")
    assert not owner.get_schedule(every.id).paused
    link.click()
    page.wait_for_url(re.compile(r".*/jobs/[0-9a-f-]{36}$"))
    owner.pause_schedule(every.id)
