"""Container jobs: a no-op image through HQ (submit to succeeded) against a raw SDK `docker run`.

In one run, on this machine's engine: ``--runs`` jobs of a no-op image go through HQ (a real
`hq server` and one real `hq agent`, each job submitted with ``?wait=`` so the call returns when
the job has succeeded), interleaved with as many raw runs of the same image through the Docker
SDK (``containers.run``: create, start, wait, remove) with the same hardened settings. Prints the
p50 latency of each and their ratio. Then throughput: an agent with 4 slots drains ``--runs``
jobs submitted at once, against 4 threads doing raw runs in parallel.
Targets: HQ's p50 latency <= 1.10 x raw, HQ's throughput >= 0.9 x raw.

Everything started here (server, agent) is a child process stopped by its PID; containers carry
the label ``hq.bench=1`` and are removed by it at the end. Run from the repository root:
``python -m bench.containers``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import docker
import docker.types

from agent.docker_runner import ContainerSpec, DockerRunner
from bench.common import (
    ADMIN_TOKEN,
    Child,
    create_database,
    drop_database,
    free_port,
    pg_url,
    stop_all,
)
from hq.client import HQClient

BASE_IMAGE = os.environ.get("HQ_BASE_IMAGE", "hq-base:bookworm")
NOOP_IMAGE = "hq-bench/noop:latest"
BENCH_LABEL = {"hq.bench": "1"}
MEMORY = "256m"
SLOTS = 4
WARMUP = 3


def build_noop(client: docker.DockerClient) -> str:
    """A no-op image on the offline base image, running as the script user."""
    dockerfile = f'FROM {BASE_IMAGE}\nUSER 1000:1000\nCMD ["true"]\n'.encode()
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile), tag=NOOP_IMAGE, network_mode="host", rm=True
    )
    return str(image.id)


HARDENED: dict[str, Any] = {
    "labels": BENCH_LABEL,
    "network_mode": "none",
    "read_only": True,
    "tmpfs": {"/tmp": "rw,nosuid,nodev,uid=1000,gid=1000,mode=1777"},
    "cap_drop": ["ALL"],
    "security_opt": ["no-new-privileges"],
    "user": "1000:1000",
    "mem_limit": MEMORY,
    "memswap_limit": MEMORY,
    "nano_cpus": 1_000_000_000,
    "pids_limit": 256,
}


def raw_run(client: docker.DockerClient) -> None:
    """`docker run --rm` through the SDK, with the settings HQ gives a job."""
    client.containers.run(NOOP_IMAGE, ["true"], remove=True, **HARDENED)


def raw_run_unremoved(client: docker.DockerClient, runner: DockerRunner, image_id: str) -> float:
    """The agent's own engine calls (DockerRunner: create, start, wait) with removal off the
    clock, as in HQ: the strictest baseline; the seconds it took."""
    spec = ContainerSpec(
        image_id=image_id,
        command=["true"],
        mounts=[],
        labels=BENCH_LABEL,
        memory_bytes=256 * 1024**2,
        cpus=1.0,
        pids=256,
        uid=1000,
        gid=1000,
    )
    started = time.perf_counter()
    container_id = runner.create(spec)
    runner.start(container_id)
    runner.wait(container_id)
    elapsed = time.perf_counter() - started
    runner.remove(container_id)
    return elapsed


def hq_child(args: list[str], env: dict[str, str], log: Path) -> Child:
    """``python -m hq ARGS``, its output to ``log``; 20 s from SIGTERM to SIGKILL when stopped."""
    return Child([sys.executable, "-m", "hq", *args], log=log, env=env, grace=20)


def hq_server(url: str, env: dict[str, str], home: Path) -> HQClient:
    """``hq server`` as a child (stopped by ``stop_all``), once it answers; an admin client."""
    server = hq_child(["server"], env, home / "server.log")
    admin = HQClient(url, ADMIN_TOKEN)
    deadline = time.monotonic() + 30
    while True:
        try:
            admin.health()
            return admin
        except Exception:
            if time.monotonic() > deadline or server.proc.poll() is not None:
                raise RuntimeError(server.log.read_text()[-2000:]) from None
            time.sleep(0.05)


def database_url(db: str, home: Path) -> tuple[str, str | None]:
    if db == "sqlite":
        return f"sqlite+aiosqlite:///{home / 'hq.db'}", None
    name = create_database("hq_bench_containers")
    return pg_url(name), name


def start_agent(url: str, token: str, home: Path, capacity: int, env: dict[str, str]) -> Child:
    agent_env = {
        **env,
        "HQ_URL": url,
        "HQ_TOKEN": token,
        "HQ_AGENT_NAME": f"bench-{capacity}",
        "HQ_AGENT_CAPACITY": str(capacity),
        "HQ_AGENT_CONTAINER_LABELS": "hq.bench=1",
        "HQ_AGENT_WORK_DIR": str(home / f"agent-{capacity}"),
    }
    agent = hq_child(["agent", "--log-level", "WARNING"], agent_env, home / f"agent-{capacity}.log")
    with HQClient(url, ADMIN_TOKEN) as admin:
        deadline = time.monotonic() + 30
        while not any(
            a.name == f"bench-{capacity}" and a.status == "active" for a in admin.list_agents()
        ):
            if time.monotonic() > deadline or agent.proc.poll() is not None:
                raise RuntimeError(f"agent did not start: {agent.log.read_text()[-2000:]}")
            time.sleep(0.05)
    return agent


def hq_job(client: HQClient) -> float:
    started = time.perf_counter()
    job = client.submit_job(script="bench-noop", wait_s=60)
    elapsed = time.perf_counter() - started
    if job.status != "succeeded":
        raise RuntimeError(f"job {job.id} ended {job.status}: {job.failure_reason}")
    return elapsed


def raw_throughput(client: docker.DockerClient, runs: int) -> float:
    per_thread = [runs // SLOTS + (1 if i < runs % SLOTS else 0) for i in range(SLOTS)]

    def work(n: int) -> None:
        for _ in range(n):
            raw_run(client)

    threads = [threading.Thread(target=work, args=(n,)) for n in per_thread]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return runs / (time.perf_counter() - started)


def hq_throughput(client: HQClient, runs: int) -> float:
    started = time.perf_counter()
    ids = {client.submit_job(script="bench-noop").id for _ in range(runs)}
    while True:
        page = client.list_jobs(status=["succeeded", "failed", "cancelled", "timed_out"], limit=200)
        ended = [j for j in page.items if j.id in ids]
        if len(ended) == runs:
            break
        time.sleep(0.01)
    elapsed = time.perf_counter() - started
    failed = [j for j in ended if j.status != "succeeded"]
    if failed:
        raise RuntimeError(f"{len(failed)} jobs did not succeed: {failed[0].failure_reason}")
    return runs / elapsed


def p50(values: list[float]) -> float:
    return statistics.median(values)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    docker_client = docker.from_env(timeout=120)
    build_noop(docker_client)
    home = Path(tempfile.mkdtemp(prefix="hq-bench-containers-"))
    db_url, pg_name = database_url(args.db, home)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": db_url,
        "HQ_PORT": str(port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
    }
    try:
        admin = hq_server(url, env, home)
        image = docker_client.images.get(NOOP_IMAGE)
        image_id = str(image.id)
        runner = DockerRunner(client=docker_client)
        admin.publish_script_version(
            name="bench-noop",
            image=NOOP_IMAGE,
            digest=str(image.id),
            manifest={
                "name": "bench-noop",
                "command": ["true"],
                "resources": {"cpus": 1, "memory": MEMORY, "timeout_s": 60},
            },
        )
        token = admin.create_token(name="bench-agent", role="agent").token

        agent = start_agent(url, token, home, 1, env)
        for _ in range(WARMUP):
            raw_run(docker_client)
            hq_job(admin)
        hq_lat: list[float] = []
        raw_lat: list[float] = []
        bare_lat: list[float] = []
        for _ in range(args.runs):  # interleaved, so all see the same machine
            started = time.perf_counter()
            raw_run(docker_client)
            raw_lat.append(time.perf_counter() - started)
            hq_lat.append(hq_job(admin))
            bare_lat.append(raw_run_unremoved(docker_client, runner, image_id))
        agent.stop()

        start_agent(url, token, home, SLOTS, env)
        hq_tp = hq_throughput(admin, args.runs)
        raw_tp = raw_throughput(docker_client, args.runs)
        admin.close()
    finally:
        stop_all()
        for container in docker_client.containers.list(all=True, filters={"label": "hq.bench=1"}):
            container.remove(force=True)
        if pg_name:
            drop_database(pg_name)

    ratio = p50(hq_lat) / p50(raw_lat)
    tp_ratio = hq_tp / raw_tp
    print(f"no-op container jobs, {args.runs} runs each, HQ on {args.db}, {os.cpu_count()} CPUs")
    print(f"{'':28}{'HQ':>10}{'raw SDK':>10}{'ratio':>8}  target")
    print(
        f"{'latency p50 (ms)':28}{p50(hq_lat) * 1000:>10.0f}{p50(raw_lat) * 1000:>10.0f}"
        f"{ratio:>8.2f}  <= 1.10  {'ok' if ratio <= 1.10 else 'MISSED'}"
    )
    print(f"{'latency p90 (ms)':28}{_p90(hq_lat) * 1000:>10.0f}{_p90(raw_lat) * 1000:>10.0f}")
    bare = p50(bare_lat)
    print(
        f"{'agent engine calls only':28}{'':>10}{bare * 1000:>10.0f}"
        f"{p50(hq_lat) / bare:>8.2f}  (create/start/wait; HQ removes after reporting)"
    )
    print(
        f"{f'throughput, {SLOTS} slots (jobs/s)':28}{hq_tp:>10.2f}{raw_tp:>10.2f}"
        f"{tp_ratio:>8.2f}  >= 0.90  {'ok' if tp_ratio >= 0.9 else 'MISSED'}"
    )
    return 0


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[-1]


if __name__ == "__main__":
    sys.exit(main())
