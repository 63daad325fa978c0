"""Each retry class end to end, with a real agent and real containers: an image that cannot be
pulled is retried, then fails as image-unavailable; a script exiting 1 is not retried;
``retry_on: [oom]`` retries an out-of-memory kill once. The reasons are in the timeline."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.fixtures.agent import AgentFactory, publish_inline, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer, ServerFactory

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
HOG = "x = []\nwhile True:\n    x.append(b'\\x01' * (16 * 1024 * 1024))\n"


@pytest.fixture
def fast_retry_server(server_factory: ServerFactory) -> LiveServer:
    return server_factory(db="sqlite", env={"HQ_RETRY_BACKOFF_SECONDS": "0.2"})


def test_an_image_that_cannot_be_pulled_is_retried_then_fails_as_image_unavailable(
    fast_retry_server: LiveServer, hq_agents: AgentFactory, registry: str
) -> None:
    server = fast_retry_server
    hq_agents(server)
    server.client("publisher").publish_script_version(
        name="ghost",
        image=f"{registry}/hq-test/ghost-retry:1",
        digest="sha256:" + "cd" * 32,
        manifest={"name": "ghost", "command": ["true"]},
    )
    client = server.client("submitter")
    job = client.submit_job(script="ghost", max_attempts=2)
    done = wait_status(client, job.id, ENDED, timeout_s=90)
    assert (done.status, done.attempts, done.failure_kind) == ("failed", 2, "image-unavailable")
    assert done.failure_reason.startswith("image-unavailable: ")
    requeued = [e for e in done.events if e.kind == "requeued"]
    assert len(requeued) == 1 and "image-unavailable" in requeued[0].detail


def test_a_script_exiting_1_is_not_retried(
    fast_retry_server: LiveServer, hq_agents: AgentFactory, base_image: BaseImage
) -> None:
    server = fast_retry_server
    hq_agents(server)
    publish_inline(server, base_image, name="exit1", code="import sys\nsys.exit(1)")
    client = server.client("submitter")
    job = client.submit_job(script="exit1", max_attempts=3)
    done = wait_status(client, job.id, ENDED, timeout_s=90)
    assert (done.status, done.attempts, done.exit_code, done.failure_kind) == (
        "failed",
        1,
        1,
        "exit",
    )
    assert "requeued" not in [e.kind for e in done.events]


def test_retry_on_oom_retries_an_out_of_memory_kill_once(
    fast_retry_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
) -> None:
    server = fast_retry_server
    hq_agents(server)
    publish_inline(server, base_image, name="hog", code=HOG, resources={"memory": "64m"})
    client = server.client("submitter")
    job = client.submit_job(script="hog", max_attempts=1, retry_on=["oom"], max_retries=1)
    done = wait_status(client, job.id, ENDED, timeout_s=120)
    assert (done.status, done.failure_reason, done.failure_kind) == (
        "failed",
        "out-of-memory",
        "oom",
    )
    assert (done.attempts, done.script_retries) == (2, 1)
    [requeued] = [e for e in done.events if e.kind == "requeued"]
    assert "out-of-memory" in requeued.detail and "script failure" in requeued.detail
    # `hq job show` prints every attempt's reason.
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": server.admin_token}
    shown = subprocess.run(
        [sys.executable, "-m", "hq", "job", "show", job.id],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "script retries 1/1" in shown
    assert "requeued attempt 1 failed (out-of-memory); script failure" in shown
