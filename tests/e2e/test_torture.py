"""The in-suite torture test: 2 HQ replicas on one PostgreSQL, an S3 server, real agents running
real containers and protocol-level agents running many fast jobs, under a fault schedule drawn
from a fixed seed (agents SIGKILLed, a host lost with its containers and folder, a full work
folder, a replica SIGKILLed and restarted, protocol agents crashing, heartbeats held past the
lease). Each real agent's work folder is a small tmpfs of the test's own, so it can be filled.
The checker (``bench.chaos``) reads every job and its events.

``HQ_TORTURE_SEED`` replays another seed; the seed is printed with the verdict.
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from bench.chaos import (
    CONTAINER_CODE,
    Cluster,
    Plan,
    Torture,
)
from bench.chaos.parts import FullDisk, LostHost, mount_tmpfs, unmount
from bench.chaos.run import CONTAINER_ARGS, CONTAINER_PARAMS
from tests.fixtures.agent import AgentFactory, publish_inline
from tests.fixtures.api import publish_fake
from tests.fixtures.docker import TEST_LABELS_CSV, BaseImage
from tests.fixtures.s3 import S3Bucket
from tests.fixtures.server import LiveServer, ServerFactory

SEED = int(os.environ.get("HQ_TORTURE_SEED", "20261202"))
LEASE_S = 3.0
SERVER_ENV = {
    "HQ_LEASE_TTL_SECONDS": str(LEASE_S),
    "HQ_REAPER_INTERVAL_SECONDS": "0.5",
    "HQ_RETRY_BACKOFF_SECONDS": "0.2",
    "HQ_RETRY_BACKOFF_MAX_SECONDS": "2",
    "HQ_OUTAGE_GRACE_SECONDS": "3",
    "HQ_TIMEOUT_SLACK_SECONDS": "10",
}
PLAN = Plan(
    seed=SEED,
    fast_jobs=600,
    container_jobs=6,
    protocol_agents=4,
    protocol_capacity=8,
    duration_s=40.0,
    agent_kills=2,
    fleet_crashes=2,
    replica_restarts=1,
    stale_completes=4,
    hosts_lost=1,
    disk_fills=1,
    work_ms=(5.0, 40.0),
)


class Replica:
    """A replica as the engine breaks it: SIGKILL, then the same process started again."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server

    def kill(self) -> None:
        self.server.stop(signal.SIGKILL)

    def start(self) -> None:
        self.server.start()


@pytest.fixture
def small_disks(tmp_path: Path) -> Iterator[list[Path]]:
    folders = [tmp_path / f"agent-{i}" for i in range(2)]
    try:
        for folder in folders:
            mount_tmpfs(folder, "128m")
        yield folders
    finally:
        for folder in folders:
            unmount(folder)


def test_torture_every_job_ends_once_with_the_result_its_params_imply(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    s3_bucket: S3Bucket,
    docker_client: docker.DockerClient,
    small_disks: list[Path],
) -> None:
    run = uuid.uuid4().hex[:8]
    env = {
        **SERVER_ENV,
        "HQ_S3_ACCESS_KEY": s3_bucket.server.access_key,
        "HQ_S3_SECRET_KEY": s3_bucket.server.secret_key,
    }
    first = server_factory(db="postgresql", storage_url=s3_bucket.storage_url, env=env)
    second = server_factory(
        storage_url=s3_bucket.storage_url, env={**env, "HQ_DATABASE_URL": first.database_url}
    )
    admin = first.client()
    fast = publish_fake(admin, params={"type": "object", "properties": {"x": {"type": "integer"}}})
    slow = publish_inline(
        first,
        base_image,
        name=f"torture-{run}",
        code=CONTAINER_CODE,
        params=CONTAINER_PARAMS,
        args=CONTAINER_ARGS,
        resources={"memory": "64m", "timeout_s": 120},
    )
    agent_env = {
        "HQ_AGENT_CONTAINER_LABELS": f"{TEST_LABELS_CSV},hq.torture={run}",
        "HQ_RETRY_MAX_S": "2",
        "HQ_HEARTBEAT_INTERVAL_S": "0.5",
    }
    names = [f"torture-{run}-{i}" for i in range(2)]
    agents = [
        hq_agents(server, name=name, capacity=2, env=agent_env, work_dir=folder)
        for server, name, folder in zip((first, second), names, small_disks, strict=True)
    ]

    def leftover() -> list[str]:
        found = docker_client.containers.list(all=True, filters={"label": f"hq.torture={run}"})
        return [c.short_id for c in found]

    cluster = Cluster(
        replica_urls=[first.url, second.url],
        admin_token=first.admin_token,
        agent_token=first.token("agent"),
        database_url=first.database_url.replace("+psycopg", ""),
        lease_s=LEASE_S,
        fast_script=fast.script,
        container_script=slow.script,
        replicas=[Replica(first), Replica(second)],
        agents=agents,
        leftover_containers=leftover,
        hosts=[
            LostHost(agent, name=name, folder=folder)
            for agent, name, folder in zip(agents, names, small_disks, strict=True)
        ],
        disks=[FullDisk(folder) for folder in small_disks],
    )
    verdict = Torture(plan=PLAN, cluster=cluster).run(drain_timeout_s=150)
    print(verdict.summary())
    assert verdict.ok, verdict.summary()
    assert verdict.jobs == PLAN.fast_jobs + PLAN.container_jobs, verdict.summary()
    assert verdict.figures["stale completes refused"] >= 1, verdict.summary()
    assert verdict.figures["faults"]["host-lost"] == 1, verdict.summary()
    assert verdict.figures["faults"]["disk-full"] == 1, verdict.summary()
