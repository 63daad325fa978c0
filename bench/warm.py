"""Warm containers: `linear-fit` on `diabetes` warm, cold through HQ, and as a raw `docker run`.

In one run, on this machine's engine: a real `hq server` (SQLite) and one real `hq agent` with
warm pools on. `linear-fit` (the example image, `make images`) is published twice on the same
image: warm, and with `warm: {enabled: false}` (always cold). Interleaved, ``--runs`` times:
a raw SDK `docker run` of the image with the hardened settings (data mounted read-only, outputs
to a folder), a cold HQ job and a warm HQ job, each submit to succeeded (``?wait=``); before a
warm job the bench waits, off the clock, until the pool has a container ready, and a job that
did not start warm is not counted as one. Then a no-op Python script the same way, warm. Then
throughput: an agent with 4 slots (pool 4) drains ``--burst`` short linear-fit jobs submitted
at once, warm against cold. Last, the memory one waiting linear-fit container costs the host
(the engine's cgroup figure, page cache excluded).
Targets (issue 15): warm linear-fit p50 <= 150 ms, >= 8x faster than raw, >= 10x faster than
HQ cold; warm no-op p50 <= 25 ms; throughput with 4 slots >= 5x cold.

Everything started here is a child process stopped by its PID; containers carry ``hq.bench=1``
and are removed by it at the end. Run from the repository root: ``python -m bench.warm``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import docker
import yaml

from bench.common import ADMIN_TOKEN, Child, free_port, percentile, stop_all
from bench.containers import BASE_IMAGE, HARDENED, hq_child, hq_server
from hq.client import HQClient

ROOT = Path(__file__).resolve().parent.parent
FIT_DIR = ROOT / "scripts" / "linear-fit"
FIT_IMAGE = os.environ.get("HQ_BENCH_FIT_IMAGE", "hq/linear-fit:latest")
NOOP_IMAGE = "hq-bench/warm-noop:latest"
PARAMS = {"target": "progression"}
SLOTS = 4
FIT_ARGS = ["python", "fit.py", "--data", "/data/diabetes.csv", "--target", "progression"]


def build_noop(client: docker.DockerClient) -> str:
    """A Python script that does nothing, on the offline base image."""
    dockerfile = (
        f"FROM {BASE_IMAGE}\nUSER 0\nRUN mkdir -p /app && echo pass > /app/noop.py\n"
        "WORKDIR /app\nUSER 1000:1000\n"
    ).encode()
    image, _ = client.images.build(
        fileobj=io.BytesIO(dockerfile), tag=NOOP_IMAGE, network_mode="host", rm=True
    )
    return str(image.id)


def publish(admin: HQClient, docker_client: docker.DockerClient, noop_id: str) -> None:
    manifest = yaml.safe_load((FIT_DIR / "hq.yaml").read_text())
    fit_id = str(docker_client.images.get(FIT_IMAGE).id)
    for name, warm in (("fit-warm", True), ("fit-cold", False)):
        admin.publish_script_version(
            name=name,
            image=FIT_IMAGE.split(":")[0],
            digest=fit_id,
            manifest={**manifest, "name": name, "warm": {"enabled": warm}},
        )
    admin.publish_script_version(
        name="noop",
        image=NOOP_IMAGE.split(":")[0],
        digest=noop_id,
        manifest={"name": "noop", "command": ["python3", "noop.py"]},
    )
    admin.upload_dataset(name="diabetes", path=FIT_DIR / "example" / "diabetes.csv")


def raw_fit(docker_client: docker.DockerClient, out: Path) -> float:
    """The same job as a raw `docker run --rm` of the image, hardened as HQ runs it."""
    data = FIT_DIR / "example" / "diabetes.csv"
    out.mkdir(exist_ok=True)
    out.chmod(0o777)
    started = time.perf_counter()
    docker_client.containers.run(
        FIT_IMAGE,
        [*FIT_ARGS, "--results", "/out/results.json", "--residuals", "/out/residuals.csv"],
        remove=True,
        volumes={
            str(data): {"bind": "/data/diabetes.csv", "mode": "ro"},
            str(out): {"bind": "/out", "mode": "rw"},
        },
        **{**HARDENED, "mem_limit": "512m", "memswap_limit": "512m"},
    )
    return time.perf_counter() - started


def hq_fit(
    client: HQClient, script: str, params: dict[str, Any] | None = None
) -> tuple[float, str]:
    inputs = {"table": "diabetes"} if script != "noop" else {}
    started = time.perf_counter()
    job = client.submit_job(script=script, params=params or {}, inputs=inputs, wait_s=120)
    elapsed = time.perf_counter() - started
    if job.status != "succeeded":
        raise RuntimeError(f"job {job.id} ({script}) ended {job.status}: {job.failure_reason}")
    return elapsed, job.id


def was_warm(client: HQClient, job_id: str) -> bool:
    return "started warm" in client.job_logs(job_id)


def wait_ready(docker_client: docker.DockerClient, work: Path, want: int = 1) -> None:
    """Off the clock: until ``want`` warm containers are ready for a job."""
    deadline = time.monotonic() + 120
    while True:
        ready = len(list((work / "warm").glob("*/warm/ready")))
        running = len(docker_client.api.containers(filters={"label": "hq.warm"}))
        if min(ready, running) >= want:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("no warm container became ready in 120 s")
        time.sleep(0.02)


def start_agent(
    url: str, token: str, home: Path, *, capacity: int, pool: int
) -> tuple[Child, Path]:
    work = home / f"agent-{capacity}"
    name = f"bench-warm-{capacity}"
    env = {
        "HQ_URL": url,
        "HQ_TOKEN": token,
        "HQ_AGENT_NAME": name,
        "HQ_AGENT_CAPACITY": str(capacity),
        "HQ_AGENT_CONTAINER_LABELS": "hq.bench=1",
        "HQ_AGENT_WORK_DIR": str(work),
        "HQ_AGENT_WARM_POOL": str(pool),
        "HQ_AGENT_WARM_MEMORY_BYTES": str(8 * 1024**3),
    }
    agent = hq_child(["agent", "--log-level", "WARNING"], env, home / f"{name}.log")
    with HQClient(url, ADMIN_TOKEN) as admin:
        deadline = time.monotonic() + 30
        while not any(a.name == name and a.status == "active" for a in admin.list_agents()):
            if time.monotonic() > deadline or agent.proc.poll() is not None:
                raise RuntimeError(f"agent did not start: {agent.log.read_text()[-2000:]}")
            time.sleep(0.05)
    return agent, work


def latency(
    args: argparse.Namespace, admin: HQClient, dc: docker.DockerClient, home: Path, work: Path
) -> dict[str, list[float]]:
    found: dict[str, list[float]] = {"raw": [], "cold": [], "warm": [], "noop": []}
    hq_fit(admin, "fit-cold", PARAMS)  # warm-up: image and input in the agent's caches
    hq_fit(admin, "fit-warm", PARAMS)  # the version's first run: cold, makes a pool
    hq_fit(admin, "noop")
    for i in range(args.runs):  # interleaved, so all see the same machine
        found["raw"].append(raw_fit(dc, home / f"raw-{i}"))
        found["cold"].append(hq_fit(admin, "fit-cold", PARAMS)[0])
        wait_ready(dc, work, 2)
        seconds, job_id = hq_fit(admin, "fit-warm", PARAMS)
        if was_warm(admin, job_id):
            found["warm"].append(seconds)
        wait_ready(dc, work, 2)
        seconds, job_id = hq_fit(admin, "noop")
        if was_warm(admin, job_id):
            found["noop"].append(seconds)
    return found


def throughput(admin: HQClient, dc: docker.DockerClient, work: Path, script: str, n: int) -> float:
    if script == "fit-warm":
        wait_ready(dc, work, SLOTS)
    started = time.perf_counter()
    ids = [
        admin.submit_job(script=script, params=PARAMS, inputs={"table": "diabetes"}).id
        for _ in range(n)
    ]
    for job_id in ids:
        job = admin.wait_job(job_id, timeout_s=600)
        if job.status != "succeeded":
            raise RuntimeError(f"job {job_id} ended {job.status}: {job.failure_reason}")
    return n / (time.perf_counter() - started)


def warm_memory(dc: docker.DockerClient) -> float:
    """MiB one waiting warm container uses (cgroup usage less inactive file pages)."""
    found = dc.api.containers(filters={"label": "hq.warm.script=fit-warm"})
    if not found:
        return float("nan")
    stats = dc.api.stats(found[0]["Id"], stream=False)
    mem = stats["memory_stats"]
    inactive = mem.get("stats", {}).get("inactive_file", 0)
    return (mem["usage"] - inactive) / 1024**2


def run(args: argparse.Namespace, dc: docker.DockerClient, home: Path) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'hq.db'}",
        "HQ_PORT": str(port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
    }
    os.environ.update(env)
    admin = hq_server(url, env, home)
    publish(admin, dc, build_noop(dc))
    token = admin.create_token(name="bench-agent", role="agent").token
    agent, work = start_agent(url, token, home, capacity=1, pool=1)
    found: dict[str, Any] = latency(args, admin, dc, home, work)
    found["memory_mib"] = warm_memory(dc)
    agent.stop()
    agent, work = start_agent(url, token, home, capacity=SLOTS, pool=SLOTS)
    hq_fit(admin, "fit-warm", PARAMS)  # makes the pool
    found["tp_cold"] = throughput(admin, dc, work, "fit-cold", args.burst)
    found["tp_warm"] = throughput(admin, dc, work, "fit-warm", args.burst)
    admin.close()
    return found


def report(found: dict[str, Any], runs: int) -> None:
    p50 = {k: statistics.median(found[k]) * 1000 for k in ("raw", "cold", "warm", "noop")}
    p90 = {k: percentile(found[k], 90) * 1000 for k in ("raw", "cold", "warm", "noop")}
    load = os.getloadavg()[0]
    print(f"linear-fit on diabetes, {runs} runs each, {os.cpu_count()} CPUs, load {load:.1f}")
    print(f"(warm samples counted: linear-fit {len(found['warm'])}, no-op {len(found['noop'])})")
    print(f"{'':34}{'p50 ms':>9}{'p90 ms':>9}")
    for key, label in (
        ("raw", "raw docker run (hardened)"),
        ("cold", "HQ cold"),
        ("warm", "HQ warm"),
        ("noop", "HQ warm no-op"),
    ):
        print(f"{label:34}{p50[key]:>9.0f}{p90[key]:>9.0f}")
    checks = [
        ("warm linear-fit p50 <= 150 ms", p50["warm"], p50["warm"] <= 150),
        ("raw / warm >= 8x", p50["raw"] / p50["warm"], p50["raw"] / p50["warm"] >= 8),
        ("HQ cold / warm >= 10x", p50["cold"] / p50["warm"], p50["cold"] / p50["warm"] >= 10),
        ("warm no-op p50 <= 25 ms", p50["noop"], p50["noop"] <= 25),
        (
            f"throughput {SLOTS} slots warm/cold >= 5x",
            found["tp_warm"] / found["tp_cold"],
            found["tp_warm"] / found["tp_cold"] >= 5,
        ),
    ]
    for label, value, ok in checks:
        print(f"{label:40}{value:>9.2f}  {'ok' if ok else 'MISSED'}")
    print(f"throughput jobs/s: cold {found['tp_cold']:.2f}, warm {found['tp_warm']:.2f}")
    print(f"one waiting linear-fit warm container: {found['memory_mib']:.0f} MiB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--burst", type=int, default=24, help="jobs in the throughput burst")
    args = parser.parse_args()
    dc = docker.from_env(timeout=120)
    home = Path(tempfile.mkdtemp(prefix="hq-bench-warm-"))
    try:
        found = run(args, dc, home)
    finally:
        stop_all()
        for container in dc.containers.list(all=True, filters={"label": "hq.bench=1"}):
            container.remove(force=True)
    report(found, args.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
