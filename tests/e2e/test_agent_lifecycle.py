"""The agent's life around its jobs: a crash mid-job, drains, and HQ going away.

A `kill -9` mid-job lets the lease expire and another agent run the job; the first agent, once
restarted, gets 409 for its late result and removes its orphan container, and exactly one result
is kept. SIGTERM and `POST /agents/{id}/drain` finish what runs, claim nothing new, exit 0. A job
that ends while HQ is down is reported once HQ is back, outputs intact.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import docker
import pytest

from tests.fixtures.agent import (
    AgentFactory,
    AgentProcess,
    job_containers,
    publish_inline,
    script_metrics,
    wait_status,
)
from tests.fixtures.docker import BaseImage
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
DATABASES = ("sqlite", "postgresql")

# Sleeps argv[1] seconds, then reports which attempt it was, as a metric and an artifact.
WORKER = """
import json, os, sys, time
print("attempt", os.environ["HQ_ATTEMPT"], "starts", flush=True)
time.sleep(float(sys.argv[1]))
attempt = int(os.environ["HQ_ATTEMPT"])
open(f"/hq/outputs/attempt-{attempt}.txt", "w").write("done")
json.dump({"metrics": {"attempt": attempt}}, open("/hq/outputs/results.json", "w"))
print("attempt", attempt, "done", flush=True)
"""


def eventually(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def running_for(docker_client: docker.DockerClient, job_id: str) -> bool:
    return any(c.status == "running" for c in job_containers(docker_client, job_id))


@pytest.mark.parametrize("db", DATABASES)
def test_killed_agent_loses_the_job_to_another_and_its_late_result_is_refused(
    db: str,
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    server = server_factory(
        db=db, env={"HQ_LEASE_TTL_SECONDS": "3", "HQ_RETRY_BACKOFF_SECONDS": "0.2"}
    )
    publish_inline(server, base_image, name="worker", code=WORKER, args=["6"])
    first = hq_agents(server, name="first")
    client = server.client("submitter")
    job = client.submit_job(script="worker", max_attempts=3)
    eventually(lambda: running_for(docker_client, job.id), timeout_s=30, what="attempt 1")
    first.kill()

    second = hq_agents(server, name="second")
    done = wait_status(client, job.id, ENDED, timeout_s=60)
    assert done.status == "succeeded", done.failure_reason
    assert done.attempts == 2
    # The first attempt's container ran on, unattended, and has finished by now.
    orphans = [
        c for c in job_containers(docker_client, job.id) if c.labels.get("hq.agent") == "first"
    ]
    assert len(orphans) == 1

    first.start()  # its earlier life's container is settled before it claims anything
    eventually(
        lambda: "HQ refused the result of job " + job.id + " (409" in first.log(),
        timeout_s=30,
        what="the late result to be refused",
    )
    eventually(
        lambda: (
            not [
                c
                for c in job_containers(docker_client, job.id)
                if c.labels.get("hq.agent") == "first"
            ]
        ),
        timeout_s=10,
        what="the orphan container to be removed",
    )
    eventually(
        lambda: not (first.work_dir / "jobs" / f"{job.id}-1").exists(),
        timeout_s=10,
        what="the orphan's folder to be removed",
    )
    assert script_metrics(client.job_result(job.id).metrics) == {"attempt": 2.0}
    assert {a.path for a in client.list_artifacts(job.id)} == {"attempt-2.txt", "results.json"}
    assert client.get_job(job.id).status == "succeeded"
    second.stop()


@pytest.mark.parametrize("db", DATABASES)
def test_restarted_agent_kills_a_container_that_hq_no_longer_leases_to_it(
    db: str,
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    server = server_factory(db=db, env={"HQ_LEASE_TTL_SECONDS": "2"})
    publish_inline(server, base_image, name="worker", code=WORKER, args=["120"])
    first = hq_agents(server, name="first")
    client = server.client("submitter")
    job = client.submit_job(script="worker", max_attempts=1)
    eventually(lambda: running_for(docker_client, job.id), timeout_s=30, what="the container")
    first.kill()
    done = wait_status(client, job.id, ENDED, timeout_s=30)  # lost, no attempts left
    assert done.status == "failed"
    assert running_for(docker_client, job.id)
    first.start()
    eventually(
        lambda: not job_containers(docker_client, job.id),
        timeout_s=15,
        what="the container HQ no longer leases to be removed",
    )


@pytest.mark.parametrize("db", DATABASES)
def test_sigterm_drains_finishes_the_running_job_claims_nothing_and_exits_0(
    db: str,
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    server = server_factory(db=db)
    publish_inline(server, base_image, name="worker", code=WORKER, args=["20"])
    agent = hq_agents(server, capacity=2)  # a free slot: a long poll is in flight at SIGTERM
    client = server.client("submitter")
    running = client.submit_job(script="worker")
    eventually(lambda: running_for(docker_client, running.id), timeout_s=30, what="the job")
    time.sleep(0.5)
    agent.terminate()
    time.sleep(0.5)
    later = client.submit_job(script="worker")
    assert agent.wait(timeout=60) == 0
    assert client.get_job(running.id).status == "succeeded"
    assert script_metrics(client.job_result(running.id).metrics) == {"attempt": 1.0}
    assert client.get_job(later.id).status == "queued"
    assert not job_containers(docker_client, later.id)


def test_drain_through_the_api_stops_claiming_and_exits_0(
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    publish_inline(sqlite_server, base_image, name="worker", code=WORKER, args=["3"])
    agent = hq_agents(sqlite_server, capacity=2)
    admin = sqlite_server.client("admin")
    client = sqlite_server.client("submitter")
    running = client.submit_job(script="worker")
    eventually(lambda: running_for(docker_client, running.id), timeout_s=30, what="the job")
    (me,) = [a for a in admin.list_agents() if a.name == agent.name]
    admin.drain_agent(me.id)
    later = client.submit_job(script="worker")
    assert agent.wait(timeout=60) == 0
    assert client.get_job(running.id).status == "succeeded"
    assert client.get_job(later.id).status == "queued"


def test_a_job_that_ends_while_hq_is_down_is_reported_when_it_returns(
    sqlite_server: LiveServer,
    live_agent_for: Callable[[LiveServer], AgentProcess],
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    server = sqlite_server
    publish_inline(server, base_image, name="worker", code=WORKER, args=["2"])
    agent = live_agent_for(server)
    client = server.client("submitter")
    job = client.submit_job(script="worker")
    eventually(lambda: running_for(docker_client, job.id), timeout_s=30, what="the job")
    server.stop()
    eventually(lambda: not running_for(docker_client, job.id), timeout_s=30, what="the job to end")
    time.sleep(2)  # the agent retries meanwhile; the outputs wait on disk
    assert (agent.work_dir / "jobs" / f"{job.id}-1" / "outputs" / "results.json").exists()
    server.start()
    done = wait_status(client, job.id, ENDED, timeout_s=60)
    assert done.status == "succeeded", done.failure_reason
    assert script_metrics(client.job_result(job.id).metrics) == {"attempt": 1.0}
    assert {a.path for a in client.list_artifacts(job.id)} == {"attempt-1.txt", "results.json"}
    eventually(
        lambda: not (agent.work_dir / "jobs" / f"{job.id}-1").exists(),
        timeout_s=10,
        what="the job folder to be removed once acknowledged",
    )


@pytest.fixture
def live_agent_for(hq_agents: AgentFactory) -> Callable[[LiveServer], AgentProcess]:
    """An agent that retries quickly while HQ is away."""
    return lambda server: hq_agents(server, env={"HQ_RETRY_MAX_S": "1"})


def test_an_agent_restarted_while_its_lease_holds_adopts_the_running_container(
    sqlite_server: LiveServer,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
) -> None:
    server = sqlite_server
    publish_inline(server, base_image, name="worker", code=WORKER, args=["4"])
    agent = hq_agents(server, name="phoenix")
    client = server.client("submitter")
    job = client.submit_job(script="worker")
    eventually(lambda: running_for(docker_client, job.id), timeout_s=30, what="the job")
    agent.kill()
    agent.start()  # well within the 30 s lease
    done = wait_status(client, job.id, ENDED, timeout_s=60)
    assert done.status == "succeeded", done.failure_reason
    assert done.attempts == 1
    assert script_metrics(client.job_result(job.id).metrics) == {"attempt": 1.0}
    assert "adopting the running container of job " + job.id in agent.log()
    eventually(
        lambda: not job_containers(docker_client, job.id),
        timeout_s=10,
        what="the container to be removed",
    )
