"""compose/hq.yml and compose/agent.yml for real: `docker compose up` on the HQ host, the agent
container with the Docker socket on a worker host, and real jobs through them.

The HQ host's services share one network namespace of their own (tests/compose/hq.override.yml,
docs/testing-compose.md), joined to the host by a veth pair; the agent stack runs with
compose/agent.yml unchanged (host network) and reaches HQ and the S3 server only at that
namespace's address, the public URLs a worker host is given. Images are swapped only through the
compose file's variables (tests/fixtures/compose.py builds them). Then the stack is put through
what an operator does: stop the agent (it drains), restart hq, down and up, scale hq to two.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import docker
import httpx
import pytest

from hq import imaging
from hq.client import HQClient
from tests.fixtures.agent import script_metrics, wait_status
from tests.fixtures.compose import (
    OVERRIDE_DIR,
    ComposeImages,
    ComposeProject,
    remove_containers_using,
    stack_env,
)
from tests.fixtures.docker import REPO_ROOT, SCRIPTS_DIR, BaseImage
from tests.fixtures.hosts import VethLink, free_link_subnet, run_checked

pytestmark = [pytest.mark.docker, pytest.mark.slow, pytest.mark.timeout(1200)]

ADMIN_TOKEN = f"hq_compose-{uuid.uuid4().hex}"
ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
HEALTH_TIMEOUT_SECONDS = 120.0
SLEEPER = (
    "import json, time; time.sleep(6); "
    "json.dump({'metrics': {'slept_s': 6}}, open('/hq/outputs/results.json', 'w'))"
)


@dataclass
class Stack:
    hq: ComposeProject
    agent: ComposeProject
    link: VethLink
    work_dir: Path
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"http://{self.link.far_addr}:8080"

    def admin(self) -> HQClient:
        return HQClient(self.url, ADMIN_TOKEN)

    def connect(self) -> None:
        """(Re)join the stack's namespace (that of the `net` container) to the host."""
        self.link.remove()
        self.link.create(pid=self.hq.container_pid("net"))

    def wait_healthy(self, url: str | None = None) -> float:
        started = time.monotonic()
        deadline = started + HEALTH_TIMEOUT_SECONDS
        while True:
            try:
                if httpx.get(f"{url or self.url}/api/v1/health", timeout=2).status_code == 200:
                    return time.monotonic() - started
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url or self.url} not healthy: {self.hq.run('ps')}")
            time.sleep(0.2)


def _agent_registered(stack: Stack, name: str, *, timeout_s: float = 60.0) -> None:
    with stack.admin() as admin:
        deadline = time.monotonic() + timeout_s
        while not any(a.name == name and a.status == "active" for a in admin.list_agents()):
            assert time.monotonic() < deadline, stack.agent.run("logs", "--no-color")
            time.sleep(0.2)


def _start_agent(stack: Stack) -> None:
    started = time.monotonic()
    stack.agent.run("up", "-d", "--wait", "--wait-timeout", "120")
    _agent_registered(stack, stack.agent.env["HQ_AGENT_NAME"])
    stack.timings["agent_up_to_registered_s"] = time.monotonic() - started


@pytest.fixture
def compose_stack(
    tmp_path: Path, docker_client: docker.DockerClient, compose_images: ComposeImages
) -> Iterator[Stack]:
    run_id = f"hqt{os.getpid()}{uuid.uuid4().hex[:3]}"
    host_addr, far_addr = free_link_subnet()
    work_dir = tmp_path / "agent-work"
    work_dir.mkdir()
    env = stack_env(images=compose_images, public_host=far_addr, admin_token=ADMIN_TOKEN)
    hq = ComposeProject(
        name=run_id,
        files=(REPO_ROOT / "compose" / "hq.yml", OVERRIDE_DIR / "hq.override.yml"),
        env=env,
        log_path=tmp_path / "compose-hq.log",
    )
    agent = ComposeProject(
        name=f"{run_id}a",
        files=(REPO_ROOT / "compose" / "agent.yml",),
        env={
            "HQ_URL": f"http://{far_addr}:8080",
            "HQ_AGENT_NAME": f"{run_id}-worker",
            "HQ_AGENT_WORK_DIR": str(work_dir),
            "HQ_AGENT_IMAGE": compose_images.tags["agent"],
        },
        log_path=tmp_path / "compose-agent.log",
    )
    stack = Stack(hq=hq, agent=agent, link=VethLink(run_id, host_addr, far_addr), work_dir=work_dir)
    try:
        started = time.monotonic()
        hq.run("up", "-d", "--wait", "--wait-timeout", "300")
        stack.timings["hq_up_to_healthy_s"] = time.monotonic() - started
        stack.connect()
        stack.wait_healthy()
        with stack.admin() as admin:
            agent.env["HQ_AGENT_TOKEN"] = admin.create_token(name="worker", role="agent").token
        _start_agent(stack)
        yield stack
    finally:
        agent.down()
        hq.down()
        stack.link.remove()
        remove_containers_using(docker_client, work_dir)
        print(f"\ncompose timings: {json.dumps(stack.timings)}\n{hq.calls}\n{agent.calls}")
    left = docker_client.containers.list(
        all=True, filters={"label": f"com.docker.compose.project={run_id}"}
    )
    assert left == []
    assert (
        docker_client.volumes.list(filters={"label": f"com.docker.compose.project={run_id}"}) == []
    )
    assert not stack.link.exists()


def _publish(stack: Stack, linear_fit: imaging.BuiltImage, base: BaseImage) -> str:
    """Publish linear-fit and a sleeper with a publisher token; upload the example data."""
    with stack.admin() as admin:
        publisher = HQClient(stack.url, admin.create_token(name="ci", role="publisher").token)
    with publisher:
        publisher.publish_script_version(
            name="linear-fit",
            image=linear_fit.ref,
            digest=linear_fit.image_id,
            manifest=linear_fit.manifest,
        )
        manifest = {
            "name": "sleeper",
            "command": ["python3", "-c", SLEEPER],
            "params": {"type": "object", "properties": {}},
            "resources": {"cpus": 1, "memory": "256m", "timeout_s": 120},
        }
        publisher.publish_script_version(
            name="sleeper", image=base.tag, digest=base.image_id, manifest=manifest
        )
        data = SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"
        publisher.upload_dataset(name="diabetes", path=data)
    return data.read_text()


def _job_and_sweep(stack: Stack, tmp_path: Path) -> str:
    """One job and a two-point sweep: results, logs and artifacts come back through S3 URLs."""
    with stack.admin() as hq:
        started = time.monotonic()
        job = hq.submit_job(
            script="linear-fit",
            inputs={"table": "diabetes"},
            params={"target": "progression"},
            wait_s=180,
        )
        stack.timings["job_submit_to_succeeded_s"] = time.monotonic() - started
        assert job.status == "succeeded", (job, hq.job_logs(job.id)[-2000:])
        result = hq.job_result(job.id)
        assert result.metrics["n_obs"] == 442
        assert isinstance(result.metrics["r2"], float)
        assert hq.job_logs(job.id).strip()
        assert {"results.json", "residuals.csv"} <= {a.path for a in hq.list_artifacts(job.id)}
        url = hq.artifact_url(job.id, "results.json")
        assert url.startswith(f"http://{stack.link.far_addr}:9000/"), url
        local = hq.download_artifact(job.id, "results.json", tmp_path / "results.json")
        assert json.loads(local.read_text())["metrics"] == pytest.approx(
            script_metrics(result.metrics)
        )

        sweep = hq.submit_sweep(
            script="linear-fit",
            params={"target": "progression"},
            grid={"alpha": [0.0, 1.0]},
            inputs={"table": "diabetes"},
            reuse=False,
        )
        done = hq.wait_sweep(sweep.id, timeout_s=240)
        assert done.counts.get("succeeded") == 2, done
        rows = hq.sweep_results(sweep.id).rows
        assert sorted(row["alpha"] for row in rows) == [0.0, 1.0]
        return job.id


def _agent_stop_drains(stack: Stack) -> str:
    """`docker compose stop` on the agent: the running job finishes and is reported."""
    with stack.admin() as hq:
        job = hq.submit_job(script="sleeper")
        wait_status(hq, job.id, {"running"}, timeout_s=60)
        stack.agent.run("stop")
        done = hq.get_job(job.id)
        assert done.status == "succeeded", (done, hq.job_logs(job.id))
        assert script_metrics(hq.job_result(job.id).metrics) == {"slept_s": 6}
        (agent,) = stack.agent.containers("agent")
        assert agent["State"] == "exited", agent
        return job.id


def _snapshot(stack: Stack) -> tuple[set[str], list[tuple[str, int]]]:
    with stack.admin() as hq:
        jobs = {j.id for j in hq.list_jobs(limit=200).items}
        datasets = [(d.name, d.latest_version) for d in hq.list_datasets()]
    return jobs, datasets


def _nothing_lost(
    stack: Stack,
    before: tuple[set[str], list[tuple[str, int]]],
    data: str,
    job_id: str,
    tmp_path: Path,
) -> None:
    assert _snapshot(stack) == before
    with stack.admin() as hq:
        got = hq.download_dataset("diabetes", 1, tmp_path / f"diabetes-{uuid.uuid4().hex}.csv")
        assert got.read_text() == data  # the bytes are still in the object store
        assert hq.job_result(job_id).metrics["n_obs"] == 442


def _scale_to_two(stack: Stack) -> None:
    replicas = OVERRIDE_DIR / "hq.replicas.yml"
    scaled = ComposeProject(
        name=stack.hq.name,
        files=(*stack.hq.files, replicas),
        env=stack.hq.env,
        log_path=stack.hq.log_path,
    )
    scaled.run("up", "-d", "--wait", "--wait-timeout", "300", "--scale", "hq=2")
    rows = scaled.containers("hq")
    assert len(rows) == 2
    assert all(row["Health"] == "healthy" for row in rows), rows
    ports = sorted(
        int(run_checked(["docker", "exec", str(row["ID"]), "cat", "/tmp/hq-port"])) for row in rows
    )
    assert len(set(ports)) == 2, ports
    codes = []
    for port in ports:
        stack.wait_healthy(f"http://{stack.link.far_addr}:{port}")
        codes.append(httpx.get(f"http://{stack.link.far_addr}:{port}/api/v1/health").status_code)
    assert codes == [200, 200]


def test_compose_stack_runs_jobs_and_survives_stop_restart_down_up_and_scale(
    compose_stack: Stack,
    example_images: dict[str, imaging.BuiltImage],
    base_image: BaseImage,
    tmp_path: Path,
) -> None:
    stack = compose_stack
    data = _publish(stack, example_images["linear-fit"], base_image)
    job_id = _job_and_sweep(stack, tmp_path)
    _agent_stop_drains(stack)
    before = _snapshot(stack)

    stack.hq.run("restart", "hq")
    stack.timings["restart_hq_to_healthy_s"] = stack.wait_healthy()
    _nothing_lost(stack, before, data, job_id, tmp_path)

    stack.hq.run("down")  # no --volumes: the named volumes keep the database and the objects
    started = time.monotonic()
    stack.hq.run("up", "-d", "--wait", "--wait-timeout", "300")
    stack.timings["up_again_to_healthy_s"] = time.monotonic() - started
    stack.connect()
    stack.wait_healthy()
    _nothing_lost(stack, before, data, job_id, tmp_path)

    _scale_to_two(stack)
