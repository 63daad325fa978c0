"""Agents that use only a free host, with a real agent and real containers.

The host's load is set through the agent's readings file (``HQ_AGENT_FREE_READINGS``, the
documented test hook): 99 is busy against ``HQ_AGENT_FREE_MAX_LOAD=1``, 0 is free. A busy agent
claims nothing and says why (``GET /api/v1/agents``); with ``HQ_AGENT_WHEN_BUSY=pause`` a running
job's container is docker-paused, its lease outlives several TTLs, the paused time is not counted
against its timeout, and it resumes and succeeds with its result; with ``finish`` the running
job finishes and nothing new is claimed; a paused job can still be cancelled.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import docker
import pytest
from playwright.sync_api import Page, expect

from hq.client import HQClient
from hq.schemas.agents import AgentRead
from tests.fixtures.agent import (
    AgentFactory,
    AgentProcess,
    job_containers,
    publish_inline,
    script_metrics,
    wait_status,
)
from tests.fixtures.browser import DashFactory, Shoot
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
LEASE_TTL_S = 3.0
BUSY_REASON = "load 99.00 is above 1"
PAUSED_FOR_S = 20.0

# Sleeps argv[1] seconds in small steps, then writes its result.
WORKER = """
import json, sys, time
for i in range(int(float(sys.argv[1]) * 10)):
    time.sleep(0.1)
print("slept", sys.argv[1], flush=True)
json.dump({"metrics": {"answer": 42}}, open("/hq/outputs/results.json", "w"))
"""


def set_load(path: Path, load: float) -> None:
    """Write the readings file at once (a rename: the agent never reads half a file)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"load": load}))
    tmp.replace(path)


def eventually(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def agent_row(server: LiveServer, name: str) -> AgentRead:
    with HQClient(server.url, server.admin_token) as admin:
        return next(a for a in admin.list_agents() if a.name == name)


def hq_agent_list(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """`hq agent list`'s table, as a viewer sees it."""
    from click.testing import CliRunner

    from hq.cli import main
    from hq.cli.common import get_settings

    monkeypatch.setenv("HQ_URL", server.url)
    monkeypatch.setenv("HQ_TOKEN", server.token("viewer"))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["agent", "list"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    return result.output


def container_states(docker_client: docker.DockerClient, job_id: str) -> list[str]:
    return [c.status for c in job_containers(docker_client, job_id)]


def free_agent(
    hq_agents: AgentFactory, server: LiveServer, readings: Path, *, when_busy: str
) -> AgentProcess:
    return hq_agents(
        server,
        env={
            "HQ_AGENT_FREE_MAX_LOAD": "1",
            "HQ_AGENT_FREE_READINGS": str(readings),
            "HQ_AGENT_FREE_CHECK_S": "0.5",
            "HQ_AGENT_WHEN_BUSY": when_busy,
        },
    )


@pytest.fixture
def readings(tmp_path: Path) -> Path:
    path = tmp_path / "readings.json"
    set_load(path, 0)
    return path


def test_a_busy_host_claims_nothing_and_says_why_until_it_is_free(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
    readings: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = server_factory(db="sqlite")
    publish_inline(server, base_image, name="worker", code=WORKER, args=["1"])
    set_load(readings, 99)
    agent = free_agent(hq_agents, server, readings, when_busy="finish")
    eventually(
        lambda: agent_row(server, agent.name).not_free == BUSY_REASON,
        timeout_s=10,
        what="the agent to report its host busy",
    )
    client = server.client("submitter")
    job = client.submit_job(script="worker")
    for _ in range(10):  # 5 s: queued, no container
        assert client.get_job(job.id).status == "queued"
        assert container_states(docker_client, job.id) == []
        time.sleep(0.5)
    busy = agent_row(server, agent.name)
    assert busy.status == "active", "a busy agent still reports, so it is not offline"
    assert "claiming nothing" in agent.log()
    listed = hq_agent_list(server, monkeypatch)
    assert agent.name in listed and BUSY_REASON in listed and "not free" in listed

    set_load(readings, 0)
    done = wait_status(client, job.id, ENDED, timeout_s=60)
    assert done.status == "succeeded", done.failure_reason
    assert script_metrics(done.metrics) == {"answer": 42}
    assert agent_row(server, agent.name).not_free is None


@pytest.mark.parametrize("db", ("sqlite", "postgresql"))
def test_a_running_job_is_paused_while_busy_keeps_its_lease_and_resumes_to_succeed(
    db: str,
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
    readings: Path,
) -> None:
    # A 1 s slack: HQ's own timeout backstop would end the job too if it counted the pause.
    server = server_factory(
        db=db, env={"HQ_LEASE_TTL_SECONDS": str(LEASE_TTL_S), "HQ_TIMEOUT_SLACK_SECONDS": "1"}
    )
    # A 15 s timeout: the job runs ~4 s but spends 20 s paused, which must not count.
    publish_inline(
        server, base_image, name="worker", code=WORKER, args=["4"], resources={"timeout_s": 15}
    )
    agent = free_agent(hq_agents, server, readings, when_busy="pause")
    client = server.client("submitter")
    job = client.submit_job(script="worker")
    eventually(
        lambda: container_states(docker_client, job.id) == ["running"],
        timeout_s=30,
        what="the job's container to run",
    )
    set_load(readings, 99)
    eventually(
        lambda: container_states(docker_client, job.id) == ["paused"],
        timeout_s=10,
        what="the container to be paused",
    )
    time.sleep(PAUSED_FOR_S)  # several lease TTLs, and past the job's timeout
    states = container_states(docker_client, job.id)
    assert states == ["paused"], (states, client.get_job(job.id), agent.log()[-3000:])
    held = client.get_job(job.id)
    assert held.status == "running" and held.attempts == 1, held
    row = agent_row(server, agent.name)
    assert (row.not_free, row.paused) == (BUSY_REASON, 1)

    set_load(readings, 0)
    done = wait_status(client, job.id, ENDED, timeout_s=60)
    assert done.status == "succeeded", done.failure_reason
    assert done.attempts == 1
    assert script_metrics(done.metrics) == {"answer": 42}
    logs = client.job_logs(job.id)
    assert f"paused: {BUSY_REASON}" in logs and "resumed after" in logs
    assert logs.index("paused:") < logs.index("resumed after") < logs.index("slept 4")
    eventually(
        lambda: agent_row(server, agent.name).paused == 0,
        timeout_s=10,
        what="the agent to report no paused job",
    )


def test_when_busy_finish_lets_the_running_job_finish_and_claims_nothing_new(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
    readings: Path,
) -> None:
    server = server_factory(db="sqlite")
    publish_inline(server, base_image, name="worker", code=WORKER, args=["3"])
    agent = free_agent(hq_agents, server, readings, when_busy="finish")
    client = server.client("submitter")
    first = client.submit_job(script="worker")
    eventually(
        lambda: container_states(docker_client, first.id) == ["running"],
        timeout_s=30,
        what="the first job's container to run",
    )
    set_load(readings, 99)
    eventually(
        lambda: agent_row(server, agent.name).not_free == BUSY_REASON,
        timeout_s=10,
        what="the agent to report its host busy",
    )
    second = client.submit_job(script="worker")
    done = wait_status(client, first.id, ENDED, timeout_s=60)
    assert done.status == "succeeded", done.failure_reason
    assert "paused" not in client.job_logs(first.id)
    for _ in range(8):  # 4 s after the first ended: the second stays queued
        assert client.get_job(second.id).status == "queued"
        time.sleep(0.5)
    assert container_states(docker_client, second.id) == []

    set_load(readings, 0)
    assert wait_status(client, second.id, ENDED, timeout_s=60).status == "succeeded"


def test_a_paused_job_can_be_cancelled(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
    readings: Path,
) -> None:
    server = server_factory(db="sqlite")
    publish_inline(server, base_image, name="worker", code=WORKER, args=["60"])
    free_agent(hq_agents, server, readings, when_busy="pause")
    client = server.client("submitter")
    job = client.submit_job(script="worker")
    eventually(
        lambda: container_states(docker_client, job.id) == ["running"],
        timeout_s=30,
        what="the job's container to run",
    )
    set_load(readings, 99)
    eventually(
        lambda: container_states(docker_client, job.id) == ["paused"],
        timeout_s=10,
        what="the container to be paused",
    )
    client.cancel_job(job.id)
    done = wait_status(client, job.id, ENDED, timeout_s=30)
    assert done.status == "cancelled"
    eventually(
        lambda: container_states(docker_client, job.id) == [],
        timeout_s=20,
        what="the cancelled job's container to be removed",
    )


@pytest.mark.browser
def test_the_agents_page_shows_why_an_agent_takes_no_work(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    dash_factory: DashFactory,
    page: Page,
    shoot: Shoot,
    readings: Path,
) -> None:
    server = server_factory(db="postgresql")
    set_load(readings, 99)
    agent = free_agent(hq_agents, server, readings, when_busy="pause")
    dash = dash_factory(server)
    dash.login(page, "val")
    page.goto(f"{dash.url}/agents")
    grid = page.locator("#agents-grid")
    expect(grid.get_by_text(agent.name)).to_be_visible(timeout=15_000)
    expect(grid.get_by_text(BUSY_REASON)).to_be_visible(timeout=15_000)
    shoot(page, "agents-not-free")
    set_load(readings, 0)
    expect(grid.get_by_text(BUSY_REASON)).to_have_count(0, timeout=20_000)  # polled every 5 s
