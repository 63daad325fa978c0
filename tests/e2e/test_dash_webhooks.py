"""The webhooks page in Debian's Chromium, against a real HQ server (PostgreSQL): a viewer sees
the webhooks and a delivery's tries, its error and its end, and never a secret.

The webhook points at a loopback port the allow-list names but nothing listens on, so each try
fails to connect; two tries, 0.2 s apart, and the delivery is failed."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect

from hq.schemas.common import JobStatus
from tests.fixtures.api import FakeAgent, publish_fake, unique_queue
from tests.fixtures.browser import DashFactory, DashServer, Shoot
from tests.fixtures.server import LiveServer, ServerFactory, free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgresql]


def test_the_webhooks_page_lists_webhooks_and_each_delivery_with_its_tries(
    server_factory: ServerFactory, dash_factory: DashFactory, page: Page, shoot: Shoot
) -> None:
    port = free_port()  # nothing listens here
    hq: LiveServer = server_factory(
        db="postgresql",
        env={
            "HQ_WEBHOOK_ALLOW": f"127.0.0.1:{port}",
            "HQ_WEBHOOK_BACKOFF_SECONDS": "0.2",
            "HQ_WEBHOOK_POLL_SECONDS": "0.1",
            "HQ_WEBHOOK_MAX_ATTEMPTS": "2",
        },
    )
    script = publish_fake(hq.client("publisher")).script
    submitter = hq.client("submitter")
    created = submitter.create_webhook(
        f"http://127.0.0.1:{port}/hq", events=["job", "sweep"], description="to the void"
    )
    queue = unique_queue()
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    agent = FakeAgent(hq, queue=queue)
    agent.complete(agent.claim_one(), status=JobStatus.failed, exit_code=1)
    deadline = time.monotonic() + 15
    while submitter.list_deliveries(created.id).items[0].status == "pending":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    dash: DashServer = dash_factory(hq)
    dash.login(page, "val")
    page.goto(f"{dash.url}/webhooks")
    expect(page.locator("h1")).to_have_text("Webhooks")
    hooks = page.locator("#webhooks-grid")
    expect(hooks).to_contain_text(f"http://127.0.0.1:{port}/hq")
    expect(hooks).to_contain_text("job, sweep")
    expect(hooks).to_contain_text("to the void")
    deliveries = page.locator("#webhook-deliveries-grid")
    expect(deliveries).to_contain_text(job.id)
    expect(deliveries).to_contain_text("failed")
    expect(deliveries).to_contain_text("error, error")
    expect(deliveries).to_contain_text("ConnectError")
    expect(page.locator("#webhook-deliveries-title")).to_contain_text(f"127.0.0.1:{port}")
    assert created.secret not in page.content()
    shoot(page, "webhooks")
