"""Smoke: one inline job through HQ and a real agent."""

from __future__ import annotations

import pytest

from tests.fixtures.agent import AgentProcess, publish_inline, script_metrics, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer

pytestmark = [pytest.mark.docker, pytest.mark.slow]

CODE = """
import json, sys
print("hello from the job")
print("to stderr", file=sys.stderr)
p = json.load(open("/hq/params.json"))
json.dump({"metrics": {"double": p["x"] * 2}}, open("/hq/outputs/results.json", "w"))
"""


def test_inline_job_succeeds(
    live_server: LiveServer, live_agent: AgentProcess, base_image: BaseImage
) -> None:
    publish_inline(
        live_server,
        base_image,
        name="smoke",
        code=CODE,
        params={"type": "object", "properties": {"x": {"type": "number"}}},
    )
    client = live_server.client("submitter")
    job = client.submit_job(script="smoke", params={"x": 21})
    done = wait_status(client, job.id, {"succeeded", "failed"})
    assert done.status == "succeeded", (done, live_agent.log()[-3000:])
    assert script_metrics(client.job_result(job.id).metrics) == {"double": 42.0}
    assert "hello from the job" in client.job_logs(job.id)
