"""The big torture run: 10,000 jobs on 2 HQ replicas, a PostgreSQL cluster of its own and an
S3 server, under a seeded fault schedule (>= 20 agent kills, 3 hosts lost with their containers
and folders, >= 2 replica restarts, a PostgreSQL restart, a 30 s S3 outage, 2 full work folders,
one agent's host cut off from HQ for 3 leases, delayed heartbeats), then the checker of every
job (``bench.chaos``). Agent 0 runs in a network namespace of the run's own, joined by a veth
link on whose host end HQ and S3 listen; every agent's work folder is a small tmpfs.

    python -m bench.torture                      # seed 1, 10,000 jobs
    python -m bench.torture --seed 7 --jobs 2000 --duration 60

The S3 outage freezes the S3 server (SIGSTOP, then SIGCONT): moto keeps its objects in memory,
so killing it would lose them. Everything started here is stopped by PID at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import docker
import httpx

from bench.chaos import CONTAINER_CODE, Cluster, Plan, Torture
from bench.chaos.hosts import NetnsHost, netns_host
from bench.chaos.parts import CutLink, FullDisk, LostHost, mount_tmpfs, unmount
from bench.chaos.pgcluster import PgCluster, create_cluster, remove_cluster
from bench.chaos.run import CONTAINER_ARGS, CONTAINER_PARAMS
from bench.common import ADMIN_TOKEN, free_port
from hq.client import HQClient

S3_KEY, S3_SECRET = "hq-bench-access", "hq-bench-secret-key"
BASE_IMAGE = os.environ.get("HQ_BASE_IMAGE", "hq-base:bookworm")
LEASE_S = 5.0
AGENT_DISK = "256m"  # each real agent's work folder is a tmpfs of this size, to be filled


class Proc:
    """A child process that can be SIGKILLed and started again with the same command."""

    def __init__(self, cmd: list[str], *, env: dict[str, str], log: Path, ready: str = "") -> None:
        self.cmd, self.env, self.log, self.ready = cmd, env, log, ready
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.cmd,
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while self.ready and time.monotonic() < deadline:
            try:
                httpx.get(self.ready, timeout=1)
                return
            except httpx.TransportError:
                time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Frozen:
    """The S3 server's outage: frozen (SIGSTOP) and thawed (SIGCONT), its objects kept."""

    def __init__(self, proc: Proc) -> None:
        self.proc = proc

    def kill(self) -> None:
        assert self.proc.proc is not None
        os.kill(self.proc.proc.pid, signal.SIGSTOP)

    def start(self) -> None:
        assert self.proc.proc is not None
        os.kill(self.proc.proc.pid, signal.SIGCONT)


class Database:
    def __init__(self, cluster: PgCluster) -> None:
        self.cluster = cluster

    def kill(self) -> None:
        self.cluster.stop()

    def start(self) -> None:
        self.cluster.start()


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--container-jobs", type=int, default=24)
    parser.add_argument("--agents", type=int, default=3, help="real container agents")
    parser.add_argument("--duration", type=float, default=150.0)
    parser.add_argument("--agent-kills", type=int, default=20)
    parser.add_argument("--work", type=Path, default=Path("/tmp/hq-bench-torture"))
    return parser.parse_args()


def _exit_on_term(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)  # so the finally below stops what was started


def main() -> int:
    signal.signal(signal.SIGTERM, _exit_on_term)
    args = _parse()
    work = args.work / f"run-{int(time.time())}"
    work.mkdir(parents=True)
    pg, pg_root = create_cluster()
    procs: list[Proc] = []
    mounts: list[Path] = []
    try:
        # Everything listens on the host end of a veth link, so the agent on the far end (its
        # own network namespace) reaches HQ and S3 as a worker host would, and can be cut off.
        with netns_host(f"hqt{os.getpid()}") as host:
            return _run(args, work=work, pg=pg, procs=procs, host=host, mounts=mounts)
    finally:
        for proc in reversed(procs):
            if isinstance(proc, Proc) and proc.proc is not None and proc.proc.poll() is None:
                os.kill(proc.proc.pid, signal.SIGCONT)  # a frozen process cannot stop
            proc.stop()
        for folder in mounts:
            unmount(folder)
        remove_cluster(pg, pg_root)


def _run(
    args: argparse.Namespace,
    *,
    work: Path,
    pg: PgCluster,
    procs: list[Proc],
    host: NetnsHost,
    mounts: list[Path],
) -> int:
    addr = host.link.host_addr
    s3_port = free_port()
    moto = Proc(
        [sys.executable, "-m", "moto.server", "-H", addr, "-p", str(s3_port)],
        env={"AWS_DEFAULT_REGION": "us-east-1"},
        log=work / "moto.log",
        ready=f"http://{addr}:{s3_port}/moto-api/",
    )
    procs.append(moto)
    moto.start()
    replicas = _replicas(work, pg=pg, s3=f"{addr}:{s3_port}", addr=addr, procs=procs)
    urls = [url for _, url in replicas]
    with HQClient(urls[0], ADMIN_TOKEN) as admin:
        fast, slow = _publish(admin)
        agent_token = admin.create_token(name="torture-agents", role="agent").token
    run = work.name
    agents = _agents(args, work=work, urls=urls, token=agent_token, run=run, procs=procs, host=host)
    mounts.extend(folder for _, _, folder in agents)
    engine = docker.from_env()

    def leftover() -> list[str]:
        found = engine.containers.list(all=True, filters={"label": f"hq.torture={run}"})
        return [c.short_id for c in found]

    plan = Plan(
        seed=args.seed,
        fast_jobs=args.jobs,
        container_jobs=args.container_jobs,
        protocol_agents=8,
        protocol_capacity=16,
        duration_s=args.duration,
        agent_kills=args.agent_kills,
        hosts_lost=3,
        disk_fills=2,
        agent_cuts=1,
        s3_down_s=30.0,
        cut_s=LEASE_S * 3,
        fleet_crashes=4,
        replica_restarts=2,
        stale_completes=8,
        db_restarts=1,
        s3_outages=1,
        down_s=2.5,
        work_ms=(0.0, 5.0),
    )
    cluster = Cluster(
        replica_urls=urls,
        admin_token=ADMIN_TOKEN,
        agent_token=agent_token,
        database_url=pg.libpq_url,
        lease_s=LEASE_S,
        fast_script=fast,
        container_script=slow,
        replicas=[proc for proc, _ in replicas],
        agents=[proc for proc, _, _ in agents],
        leftover_containers=leftover,
        database=Database(pg),
        storage=Frozen(moto),
        hosts=[LostHost(proc, name=name, folder=folder) for proc, name, folder in agents],
        disks=[FullDisk(folder) for _, _, folder in agents],
        links=[CutLink(host.link)],  # agent 0 runs on the far end of the link
    )
    started = time.monotonic()
    verdict = Torture(plan=plan, cluster=cluster).run(drain_timeout_s=600)
    print(verdict.summary())
    print(json.dumps({"wall_s": round(time.monotonic() - started, 1), "ok": verdict.ok}))
    return 0 if verdict.ok else 1


def _replicas(
    work: Path, *, pg: PgCluster, s3: str, addr: str, procs: list[Proc]
) -> list[tuple[Proc, str]]:
    out = []
    for i in range(2):
        port = free_port()
        home = work / f"replica-{i}"
        home.mkdir()
        env = {
            "HQ_HOME": str(home),
            "HQ_DATABASE_URL": pg.url,
            "HQ_STORAGE_URL": f"s3://hq-torture?endpoint=http://{s3}&region=us-east-1",
            "HQ_S3_ACCESS_KEY": S3_KEY,
            "HQ_S3_SECRET_KEY": S3_SECRET,
            "HQ_HOST": addr,
            "HQ_PORT": str(port),
            "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
            "HQ_LOG_LEVEL": "warning",
            "HQ_LEASE_TTL_SECONDS": str(LEASE_S),
            "HQ_REAPER_INTERVAL_SECONDS": "0.5",
            "HQ_RETRY_BACKOFF_SECONDS": "0.2",
            "HQ_RETRY_BACKOFF_MAX_SECONDS": "2",
            "HQ_OUTAGE_GRACE_SECONDS": "10",
        }
        url = f"http://{addr}:{port}"
        proc = Proc(
            [sys.executable, "-m", "hq", "server"],
            env=env,
            log=home / "server.log",
            ready=f"{url}/api/v1/health",
        )
        procs.append(proc)
        proc.start()
        out.append((proc, url))
    return out


def _publish(admin: HQClient) -> tuple[str, str]:
    image = docker.from_env().images.get(BASE_IMAGE)
    fast = admin.publish_script_version(
        name="torture-fast",
        image="127.0.0.1:5000/hq/torture-fast:1",
        digest="sha256:" + "7" * 64,
        manifest={
            "name": "torture-fast",
            "command": ["true"],
            "params": {"type": "object", "properties": {"x": {"type": "integer"}}},
        },
    )
    manifest: dict[str, Any] = {
        "name": "torture-slow",
        "command": ["python3", "-c", CONTAINER_CODE, *CONTAINER_ARGS],
        "params": CONTAINER_PARAMS,
        "resources": {"cpus": 1, "memory": "64m", "timeout_s": 300},
    }
    slow = admin.publish_script_version(
        name="torture-slow", image=BASE_IMAGE, digest=str(image.id), manifest=manifest
    )
    return fast.script, slow.script


def _agents(
    args: argparse.Namespace,
    *,
    work: Path,
    urls: list[str],
    token: str,
    run: str,
    procs: list[Proc],
    host: NetnsHost,
) -> list[tuple[Proc, str, Path]]:
    """The real agents, each with its work folder on a tmpfs of its own (to be filled); agent 0
    on the far end of ``host``'s link (to be cut off). (process, name, folder) each."""
    agents = []
    for i in range(args.agents):
        folder = work / f"agent-{i}"
        mount_tmpfs(folder, AGENT_DISK)
        name = f"torture-{run}-{i}"
        env = {
            "HQ_URL": urls[i % len(urls)],
            "HQ_TOKEN": token,
            "HQ_AGENT_NAME": name,
            "HQ_AGENT_CAPACITY": "2",
            "HQ_AGENT_WORK_DIR": str(folder),
            "HQ_AGENT_CONTAINER_LABELS": f"hq.bench=1,hq.torture={run}",
            "HQ_RETRY_MAX_S": "2",
            "HQ_CLAIM_WAIT_S": "5",
        }
        on_host = host.exec_prefix() if i == 0 else []
        cmd = [*on_host, sys.executable, "-m", "hq", "agent"]
        proc = Proc(cmd, env=env, log=work / f"agent-{i}.log")
        procs.append(proc)
        proc.start()
        agents.append((proc, name, folder))
    time.sleep(2)
    return agents


if __name__ == "__main__":
    sys.exit(main())
