"""Warm containers on the real engine: a warm job behaves exactly as a cold one, one job each.

A probe script (a file in its own image, built here on the base image) is published twice on
the same image: ``probe`` (warm) and ``probe-cold`` (``warm: {enabled: false}``, always cold).
Each behaviour (write files from the input, exit non-zero, raise, ``sys.exit(3)``, run past the
timeout, run out of memory) is run cold and warm and must end the same way with the same
artifacts, byte for byte,
and the same script output. Every job prints its container's hostname, so the test sees that no
container ran two jobs. A warm job cancels within 2 s; an agent killed with warm containers
leaves none behind once restarted, and settles a warm job that was running.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import docker
import pytest

from hq import imaging
from hq.client import HQClient
from tests.fixtures.agent import AgentFactory, AgentProcess, script_metrics, wait_status
from tests.fixtures.api import call
from tests.fixtures.docker import SCRIPTS_DIR, BaseImage
from tests.fixtures.server import LiveServer, ServerFactory

pytestmark = [pytest.mark.docker, pytest.mark.slow]

ENDED = {"succeeded", "failed", "timed_out", "cancelled"}
WARM_ENV = {"HQ_AGENT_WARM_POOL": "1", "HQ_AGENT_WARM_IDLE_S": "300"}

PROBE = r"""
import json, os, sys, time
import csv
print("container", os.environ["HOSTNAME"], flush=True)
mode = sys.argv[2]
assert json.load(open("/hq/params.json"))["mode"] == mode
rows = list(csv.reader(open(sys.argv[1])))
facts = {
    "name": __name__, "argv": sys.argv, "cwd": os.getcwd(), "path0": sys.path[0],
    "file": __file__, "rows": len(rows), "job": len(os.environ["HQ_JOB_ID"]) > 8,
    "env": sorted(k for k in os.environ if k not in ("HOSTNAME",)),
    "inputs": sorted(os.listdir("/hq/inputs")), "outputs": os.listdir("/hq/outputs"),
}
json.dump(facts, open("/hq/outputs/facts.json", "w"), sort_keys=True)
open("/hq/outputs/copy.csv", "w").write(open(sys.argv[1]).read().upper())
json.dump({"metrics": {"rows": len(rows)}}, open("/hq/outputs/results.json", "w"))
print("stderr line", file=sys.stderr, flush=True)
left_open = open("/hq/outputs/left-open.txt", "w")  # flushed at exit, never closed
left_open.write("buffered " * 100)
import atexit, threading
atexit.register(lambda: open("/hq/outputs/atexit.txt", "w").write("ran"))
late = lambda: (time.sleep(0.3), open("/hq/outputs/thread.txt", "w").write("joined"))
threading.Thread(target=late).start()

def deep(n):
    if n == 0:
        raise ValueError("the probe raised")
    deep(n - 1)

if mode == "fail":
    os._exit(2)
if mode == "raise":
    deep(2)
if mode == "exit3":
    sys.exit(3)
if mode == "late-exit3":
    time.sleep(2)
    sys.exit(3)
if mode == "sleep":
    time.sleep(120)
if mode == "oom":
    hog = b"x" * (400 * 1024**2)
print("done", mode)
"""


def build_probe(client: docker.DockerClient, base: BaseImage) -> str:
    code = PROBE.encode()
    dockerfile = (
        f"FROM {base.tag}\nUSER 0\nRUN mkdir -p /app && printf '%s' '{code.hex()}' | "
        "python3 -c 'import sys; sys.stdout.buffer.write(bytes.fromhex(sys.stdin.read()))' "
        "> /app/probe.py\nWORKDIR /app\nUSER 1000:1000\n"
    ).encode()
    tag = f"hq-test/warm-probe:{hashlib.sha256(dockerfile).hexdigest()[:12]}"
    image, _ = client.images.build(fileobj=io.BytesIO(dockerfile), tag=tag, rm=True)
    return str(image.id)


def publish_probe(server: LiveServer, image_id: str, *, name: str, warm: bool) -> None:
    manifest: dict[str, Any] = {
        "name": name,
        "command": ["python3", "probe.py", "{inputs.table}", "{params.mode}"],
        "inputs": {"table": {}},
        "params": {
            "type": "object",
            "properties": {"mode": {"type": "string"}},
        },
        "resources": {"cpus": 1, "memory": "256m", "timeout_s": 60},
        "warm": {"enabled": warm},
    }
    server.client("publisher").publish_script_version(
        name=name, image="hq-test/warm-probe", digest=image_id, manifest=manifest
    )


@pytest.fixture
def probe_server(
    server_factory: ServerFactory,
    base_image: BaseImage,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> LiveServer:
    server = server_factory(db="sqlite")
    image_id = build_probe(docker_client, base_image)
    publish_probe(server, image_id, name="probe", warm=True)
    publish_probe(server, image_id, name="probe-cold", warm=False)
    data = tmp_path / "table.csv"
    data.write_text("a,b\n1,2\n3,4\n")
    server.client("submitter").upload_dataset(name="table", path=data)
    return server


def warm_waiting(docker_client: docker.DockerClient, agent: AgentProcess) -> int:
    """Warm containers of ``agent`` whose runner is ready for a job."""
    ready = list((agent.work_dir / "warm").glob("*/warm/ready"))
    running = docker_client.api.containers(filters={"label": f"hq.warm.agent={agent.name}"})
    return min(len(ready), len(running))


def eventually(predicate: Callable[[], bool], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def run(client: HQClient, script: str, mode: str, **extra: Any) -> tuple[Any, str]:
    job = client.submit_job(
        script=script, params={"mode": mode}, inputs={"table": "table"}, **extra
    )
    done = wait_status(client, job.id, ENDED, timeout_s=90)
    return done, client.job_logs(job.id)


def script_output(logs: str) -> list[str]:
    """The script's own lines, sorted (stdout and stderr interleave as they will), without the
    agent's notes and the hostname line."""
    notes = ("started warm", "job ended: ", "container ", "timeout after ")
    return sorted(line for line in logs.splitlines() if not line.startswith(notes))


def artifacts(client: HQClient, job_id: str) -> dict[str, str]:
    return {a.path: a.sha256 for a in client.list_artifacts(job_id)}


def hostname(logs: str) -> str:
    found = re.search(r"container ([0-9a-f]{12})", logs)
    assert found, logs
    return found.group(1)


def test_warm_and_cold_jobs_end_alike_with_the_same_bytes_and_one_job_per_container(
    probe_server: LiveServer,
    hq_agents: AgentFactory,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    agent = hq_agents(probe_server, env=WARM_ENV)
    client = probe_server.client("submitter")
    first, logs = run(client, "probe", "write")  # the version's first run is cold
    assert first.status == "succeeded", logs
    assert "started warm" not in logs
    hosts = [hostname(logs)]
    cases = {
        "write": ("succeeded", 0, None),
        "fail": ("failed", 2, "exit code 2"),
        "raise": ("failed", 1, "exit code 1"),
        "exit3": ("failed", 3, "exit code 3"),
        "sleep": ("timed_out", None, "timeout"),
        "oom": ("failed", None, "out-of-memory"),
    }
    for mode, (status, code, reason) in cases.items():
        extra = {"timeout_s": 3} if mode == "sleep" else {}
        cold, cold_logs = run(client, "probe-cold", mode, **extra)
        eventually(lambda: warm_waiting(docker_client, agent) >= 1, timeout_s=60, what="warm")
        warm, warm_logs = run(client, "probe", mode, **extra)
        assert "started warm" in warm_logs and "started warm" not in cold_logs, warm_logs
        assert "hq-end" not in warm_logs and "\x1e" not in warm_logs  # the end markers cut out
        for job in (cold, warm):
            assert job.status == status, (mode, job.failure_reason)
            if code is not None:
                assert job.exit_code == code, (mode, job.exit_code)
            assert job.failure_reason == reason
            assert script_output(warm_logs) == script_output(cold_logs), (warm_logs, cold_logs)
        if mode == "write":
            facts = tmp_facts(client, warm.id, tmp_path)
            assert facts == tmp_facts(client, cold.id, tmp_path)
            assert {"left-open.txt", "atexit.txt", "thread.txt"} <= set(artifacts(client, warm.id))
        assert artifacts(client, warm.id) == artifacts(client, cold.id), mode
        hosts += [hostname(cold_logs), hostname(warm_logs)]
        if mode == "write":
            assert script_metrics(client.job_result(warm.id).metrics) == {"rows": 3.0}
            assert facts["name"] == "__main__" and facts["argv"][0] == "probe.py"
            assert facts["path0"] == "/app" and facts["cwd"] == "/app" and facts["job"]
        if mode == "raise":
            assert "ValueError: the probe raised" in warm_logs
            assert "runpy" not in warm_logs and "runner.py" not in warm_logs
    assert len(hosts) == len(set(hosts)), hosts  # no container ran two jobs
    viewer = probe_server.client("viewer")  # the agents page's figure: containers waiting
    eventually(
        lambda: next(a for a in viewer.list_agents() if a.name == agent.name).warm == {"probe": 1},
        timeout_s=60,
        what="the agent to report its warm container",
    )
    metrics = call(probe_server, probe_server.admin_token, "GET", "/metrics").text
    assert 'hq_job_starts_total{kind="warm"} 6.0' in metrics, metrics
    assert 'hq_job_starts_total{kind="cold"} 7.0' in metrics


def tmp_facts(client: HQClient, job_id: str, tmp: Path) -> dict[str, Any]:
    path = client.download_artifact(job_id, "facts.json", tmp / f"{job_id}.json")
    return dict(json.loads(path.read_text()))


def warm_containers(docker_client: docker.DockerClient, agent: AgentProcess) -> list[str]:
    found = docker_client.api.containers(all=True, filters={"label": f"hq.warm.agent={agent.name}"})
    return [str(c["Id"]) for c in found]


def start_warm_sleeper(
    client: HQClient, agent: AgentProcess, docker_client: docker.DockerClient
) -> str:
    """A cold first run, then a sleeping job handed to the warm container; its id."""
    first, logs = run(client, "probe", "write")
    assert first.status == "succeeded", logs
    eventually(lambda: warm_waiting(docker_client, agent) >= 1, timeout_s=60, what="warm")
    job = client.submit_job(script="probe", params={"mode": "sleep"}, inputs={"table": "table"})
    eventually(
        lambda: "done" in client.job_logs(job.id) or "container " in client.job_logs(job.id),
        timeout_s=30,
        what="the job to start",
    )
    assert "started warm" in client.job_logs(job.id)
    return job.id


def test_a_warm_job_cancels_within_two_seconds(
    probe_server: LiveServer, hq_agents: AgentFactory, docker_client: docker.DockerClient
) -> None:
    agent = hq_agents(probe_server, env=WARM_ENV)
    client = probe_server.client("submitter")
    job_id = start_warm_sleeper(client, agent, docker_client)
    started = time.monotonic()
    client.cancel_job(job_id)
    done = wait_status(client, job_id, ENDED, timeout_s=10)
    assert done.status == "cancelled"
    assert time.monotonic() - started <= 2.0


def test_an_agent_killed_with_warm_containers_leaves_none_after_its_restart(
    probe_server: LiveServer, hq_agents: AgentFactory, docker_client: docker.DockerClient
) -> None:
    agent = hq_agents(probe_server, env=WARM_ENV)
    client = probe_server.client("submitter")
    job_id = start_warm_sleeper(client, agent, docker_client)
    eventually(lambda: warm_waiting(docker_client, agent) >= 1, timeout_s=60, what="a refill")
    before = set(warm_containers(docker_client, agent))
    assert len(before) == 2  # the running job's and the one waiting
    agent.kill()
    assert set(warm_containers(docker_client, agent)) == before  # a crash leaves them
    agent.start()
    # The waiting one is removed; the running job's container is adopted and watched again.
    eventually(
        lambda: len(warm_containers(docker_client, agent)) == 1, timeout_s=20, what="removal"
    )
    eventually(
        lambda: "adopting the running container of job " + job_id in agent.log(),
        timeout_s=20,
        what="the running job's container to be adopted",
    )
    client.cancel_job(job_id)
    assert wait_status(client, job_id, ENDED, timeout_s=15).status == "cancelled"
    eventually(lambda: not warm_containers(docker_client, agent), timeout_s=20, what="cleanup")
    assert not list((agent.work_dir / "warm").glob("*"))
    eventually(
        lambda: not list((agent.work_dir / "jobs").glob("*")), timeout_s=20, what="its folder"
    )


def test_a_warm_job_that_ended_while_hq_was_away_is_reported_after_the_agent_restarts(
    probe_server: LiveServer, hq_agents: AgentFactory, docker_client: docker.DockerClient
) -> None:
    """The runner stays after the end it announced until the agent removes its container. An
    agent killed before it could report finds it again and reports the job's own status."""
    agent = hq_agents(probe_server, env=WARM_ENV)
    client = probe_server.client("submitter")
    first, logs = run(client, "probe", "write")
    assert first.status == "succeeded", logs
    eventually(lambda: warm_waiting(docker_client, agent) >= 1, timeout_s=60, what="warm")
    job = client.submit_job(
        script="probe", params={"mode": "late-exit3"}, inputs={"table": "table"}
    )
    eventually(lambda: "started warm" in client.job_logs(job.id), timeout_s=30, what="a start")
    probe_server.stop()  # the job ends with nobody to report to
    folder = agent.work_dir / "jobs" / f"{job.id}-1"
    eventually(lambda: (folder / "warm" / "exit").exists(), timeout_s=30, what="the job's end")
    assert (folder / "warm" / "exit").read_text() == "3"
    handed = json.loads((folder / "warm.json").read_text())["container_id"]
    time.sleep(0.5)
    assert docker_client.api.inspect_container(handed)["State"]["Running"]  # it stays
    agent.kill()
    probe_server.start()
    agent.start()
    done = wait_status(client, job.id, ENDED, timeout_s=30)
    assert (done.status, done.exit_code, done.failure_reason) == ("failed", 3, "exit code 3")
    assert done.attempts == 1
    eventually(
        lambda: handed not in warm_containers(docker_client, agent), timeout_s=20, what="removal"
    )


def test_linear_fit_warm_gives_the_bytes_of_linear_fit_cold(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    docker_client: docker.DockerClient,
    example_images: dict[str, imaging.BuiltImage],
) -> None:
    server = server_factory(db="sqlite")
    image = example_images["linear-fit"]
    for name, warm in (("fit-warm", True), ("fit-cold", False)):
        body = {**image.manifest.model_dump(mode="json"), "name": name, "warm": {"enabled": warm}}
        server.client("publisher").publish_script_version(
            name=name, image=image.ref.split(":")[0], digest=image.image_id, manifest=body
        )
    data = SCRIPTS_DIR / "linear-fit" / "example" / "diabetes.csv"
    client = server.client("submitter")
    client.upload_dataset(name="diabetes", path=data)
    agent = hq_agents(server, env=WARM_ENV)
    params = {"target": "progression", "alpha": 0.5}

    def fit(script: str) -> tuple[Any, str]:
        job = client.submit_job(script=script, params=params, inputs={"table": "diabetes"})
        return wait_status(client, job.id, ENDED, timeout_s=120), client.job_logs(job.id)

    fit("fit-warm")  # the first run is cold and makes the pool
    cold, cold_logs = fit("fit-cold")
    eventually(lambda: warm_waiting(docker_client, agent) >= 1, timeout_s=90, what="warm")
    warm, warm_logs = fit("fit-warm")
    assert cold.status == warm.status == "succeeded", (cold_logs, warm_logs)
    assert "started warm" in warm_logs
    assert script_output(warm_logs) == script_output(cold_logs)
    assert artifacts(client, warm.id) == artifacts(client, cold.id)
    assert set(artifacts(client, warm.id)) == {"results.json", "residuals.csv"}
    warm_metrics, cold_metrics = (
        client.job_result(warm.id).metrics,
        client.job_result(cold.id).metrics,
    )
    assert script_metrics(warm_metrics) == script_metrics(cold_metrics)
    # A warm job's CPU time is its own, from the hand-over: not the interpreter's start and the
    # imports of pandas and scikit-learn that its container did before it waited.
    assert cold_metrics["hq_cpu_s"] >= 0.4, cold_metrics
    assert warm_metrics["hq_cpu_s"] < cold_metrics["hq_cpu_s"] / 2, (warm_metrics, cold_metrics)
