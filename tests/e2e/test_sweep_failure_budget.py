"""`hq sweep submit --max-failures N` over the real API: once more than N jobs have failed, the
jobs that have not started are cancelled, each saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from hq.schemas.common import JobStatus
from tests.fixtures.api import FakeAgent, publish_fake, unique_queue
from tests.fixtures.server import LiveServer


def test_a_sweep_past_max_failures_cancels_the_jobs_not_started(sqlite_server: LiveServer) -> None:
    server = sqlite_server
    script = publish_fake(server.client("publisher")).script
    queue = unique_queue()
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": server.token("submitter")}
    created = subprocess.run(
        [sys.executable, "-m", "hq", "sweep", "submit", script, "-g", "n=1,2,3,4,5,6",
         "--no-reuse", "--queue", queue, "--max-failures", "1", "--retry-on", "exit", "--json"],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    sweep = json.loads(created.stdout)
    assert sweep["spec"]["max_failures"] == 1 and sweep["spec"]["retry_on"] == ["exit"]
    agent = FakeAgent(server, queue=queue)
    admin = server.client()
    for _ in range(12):  # every job exits 1; each is retried once (retry_on exit) before failing
        if admin.get_sweep(sweep["id"]).finished:
            break
        lease = agent.claim_one(wait_s=20)
        agent.complete(lease, status=JobStatus.failed, exit_code=1)
    jobs = admin.list_jobs(sweep=sweep["id"], limit=100).items
    statuses = sorted(j.status for j in jobs)
    assert statuses == ["cancelled"] * 4 + ["failed"] * 2
    failed = [j for j in jobs if j.status == "failed"]
    assert [(j.attempts, j.script_retries, j.failure_kind) for j in failed] == [(2, 1, "exit")] * 2
    cancelled = next(j for j in jobs if j.status == "cancelled")
    assert "failure budget" in (cancelled.failure_reason or "")
    assert admin.get_sweep(sweep["id"]).finished
