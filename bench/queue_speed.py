"""Queue speed: HQ's HTTP claim/complete loop against procrastinate and Celery, on this machine.

Throughput: ``--jobs`` no-op jobs are enqueued first, then 2 agents (or workers) are released at
once and drain the queue; jobs/s is jobs / (last completion - release). HQ runs on PostgreSQL (a
fresh database, dropped after) and SQLite; the baselines (bench/baselines.py): procrastinate on the
same PostgreSQL (its own fresh database), Celery on the local Redis (one db only, flushed before
and after). ``hq-pg-workers`` is HQ on PostgreSQL with ``--server-workers`` server processes on
one port (``HQ_WORKERS``); the others run one.
Latency: 2 idle HQ agents long-poll with capacity 1; jobs are submitted one at a time and the
time from the submit call's return to the claim's return is taken from one shared clock
(``time.time()`` in both processes).

Everything started here is a child process stopped by its PID at the end, even on failure.
Run from the repository root as ``python -m bench.queue_speed`` (``--help`` lists the knobs: jobs,
capacity, which systems); its child roles run the same way.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any

from bench.baselines import (
    celery_throughput,
    procrastinate_throughput,
    run_celery_worker,
    run_procrastinate_worker,
)
from bench.common import (
    ADMIN_TOKEN,
    STEP_TIMEOUT_S,
    Talker,
    cpu_seconds,
    create_database,
    drop_database,
    free_port,
    percentile,
    pg_url,
    role,
    stop_all,
)

SCRIPT = "bench-noop"
DIGEST = "sha256:" + "0" * 64
AGENTS = 2
SERVER_CMD = [sys.executable, "-m", "hq", "server"]  # a profiling run may swap in a wrapper
LATENCY_GAP_S = 0.02  # let both agents return to their long poll between latency samples


# -- HQ ----------------------------------------------------------------------------------------
def start_hq(home: Path, database_url: str, workers: int = 1) -> tuple[Talker, str]:
    import httpx

    port = free_port()
    env = {
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": database_url,
        "HQ_PORT": str(port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
        "HQ_WORKERS": str(workers),
    }
    server = Talker(SERVER_CMD, log=home / "server.log", env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"hq server exited: {server.log.read_text()[-2000:]}")
        with suppress(httpx.TransportError):
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return server, url
        time.sleep(0.05)
    raise RuntimeError("hq server did not start in 60 s")


def publish_noop(admin: Any) -> None:
    manifest = {
        "name": SCRIPT,
        "command": ["true"],
        "params": {"type": "object", "properties": {"i": {"type": "integer"}}},
    }
    admin.publish_script_version(
        name=SCRIPT, image=f"127.0.0.1:5000/{SCRIPT}", digest=DIGEST, manifest=manifest
    )


def hq_throughput(
    *,
    database_url: str,
    home: Path,
    jobs: int,
    capacity: int,
    split: bool = False,
    workers: int = 1,
) -> dict[str, Any]:
    from hq.client import HQClient

    server, url = start_hq(home, database_url, workers)
    try:
        with HQClient(url, ADMIN_TOKEN, timeout=STEP_TIMEOUT_S) as admin:
            publish_noop(admin)
            token = admin.create_token(name="bench-agent", role="agent").token
            agents = [
                role(
                    "hq-agent",
                    url,
                    token,
                    str(capacity),
                    "split" if split else "one",
                    log=home / f"agent{i}.log",
                )
                for i in range(AGENTS)
            ]
            for agent in agents:
                agent.expect()
            started = time.monotonic()
            sweep = admin.submit_sweep(script=SCRIPT, grid={"i": list(range(jobs))}, reuse=False)
            enqueue_s = time.monotonic() - started
            pids = server_pids(server.proc.pid)
            go, cpu_before = time.time(), sum(map(cpu_seconds, pids))
            for agent in agents:
                agent.send("go")
            reports = [json.loads(agent.expect()) for agent in agents]
            cpu_ms = (sum(map(cpu_seconds, pids)) - cpu_before) * 1000 / jobs
            done = admin.get_sweep(sweep.id).counts.get("succeeded", 0)
        if done != jobs or sum(r["done"] for r in reports) != jobs:
            raise RuntimeError(f"HQ finished {done} of {jobs} jobs ({reports})")
        drain = max(r["last"] for r in reports) - go
        agent_ms = sum(r["cpu"] for r in reports) * 1000 / jobs
        return {
            "jobs_s": jobs / drain,
            "drain_s": drain,
            "enqueue_s": enqueue_s,
            "cpu_ms": cpu_ms,
            "agent_cpu_ms": agent_ms,
        }
    finally:
        stop_all()


def server_pids(pid: int) -> list[int]:
    """The server and its workers (``HQ_WORKERS`` > 1: the parent only watches them)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [pid, *map(int, children)]


def hq_latency(*, database_url: str, home: Path, samples: int, workers: int = 1) -> dict[str, Any]:
    from hq.client import HQClient

    _server, url = start_hq(home, database_url, workers)
    claims: queue.Queue[str | None] = queue.Queue()
    try:
        with HQClient(url, ADMIN_TOKEN, timeout=STEP_TIMEOUT_S) as admin:
            publish_noop(admin)
            token = admin.create_token(name="bench-agent", role="agent").token
            agents = [
                role("hq-latency-agent", url, token, log=home / f"lagent{i}.log", out=claims)
                for i in range(AGENTS)
            ]
            for _ in agents:
                if claims.get(timeout=STEP_TIMEOUT_S) != "ready":
                    raise RuntimeError("a latency agent failed to start; see its log")
            time.sleep(0.2)  # both agents are in their long poll
            after_return: list[float] = []
            after_start: list[float] = []
            for i in range(samples):
                t_start = time.time()
                job = admin.submit_job(script=SCRIPT, params={"i": i})
                t_return = time.time()
                while True:
                    line = claims.get(timeout=10)
                    if line is None:
                        raise RuntimeError("a latency agent exited; see its log")
                    seen = json.loads(line)
                    if seen["job"] == job.id:
                        break
                after_return.append((seen["t"] - t_return) * 1000)
                after_start.append((seen["t"] - t_start) * 1000)
                time.sleep(LATENCY_GAP_S)
        return {
            "p50": percentile(after_return, 50),
            "p99": percentile(after_return, 99),
            "p50_start": percentile(after_start, 50),
            "p99_start": percentile(after_start, 99),
        }
    finally:
        stop_all()


def run_hq_agent(url: str, token: str, capacity: int, split: bool) -> None:
    """Register, wait for 'go', then claim a batch, complete it and claim the next in one call
    (``split``: complete in one call, claim in another), until a claim comes back empty."""
    from hq.client import HQClient
    from hq.schemas.agents import AgentCreate, CompleteItem
    from hq.schemas.common import JobStatus

    with HQClient(url, token) as client:
        agent = client.register_agent(AgentCreate(name=f"bench-{os.getpid()}", capacity=capacity))
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        done, last, cpu = 0, time.time(), time.process_time()
        leases = client.claim(agent.id, capacity=capacity, wait_s=0).leases
        while leases:
            items = [
                CompleteItem(
                    job_id=lease.job_id,
                    lease_token=lease.lease_token,
                    status=JobStatus.succeeded,
                    exit_code=0,
                )
                for lease in leases
            ]
            if split:  # two requests per batch: complete, then claim
                results = client.complete_many(items).results
                leases = client.claim(agent.id, capacity=capacity, wait_s=0).leases
            else:  # one: the results and the next claim together
                both = client.complete_and_claim(agent.id, items, capacity=capacity, wait_s=0)
                results, leases = both.results, both.leases
            done += sum(r.accepted for r in results)
            last = time.time()
        cpu = time.process_time() - cpu
        print(json.dumps({"done": done, "last": last, "cpu": cpu}), flush=True)


def run_latency_agent(url: str, token: str) -> None:
    """Long-poll with capacity 1; print each claim's job id and return time, then complete it."""
    from hq.client import HQClient
    from hq.schemas.agents import AgentCreate, CompleteRequest
    from hq.schemas.common import JobStatus

    with HQClient(url, token) as client:
        agent = client.register_agent(AgentCreate(name=f"lat-{os.getpid()}", capacity=1))
        print("ready", flush=True)
        while True:
            asked = time.time()
            leases = client.claim(agent.id, capacity=1, wait_s=20).leases
            now = time.time()
            for lease in leases:
                print(json.dumps({"job": lease.job_id, "t": now, "asked": asked}), flush=True)
                client.complete(
                    lease.job_id,
                    CompleteRequest(
                        lease_token=lease.lease_token, status=JobStatus.succeeded, exit_code=0
                    ),
                )


# -- main ------------------------------------------------------------------------------------
SYSTEMS = ("hq-pg", "hq-pg-workers", "hq-pg-split", "procrastinate", "celery", "hq-sqlite")
LABELS = {
    "hq-pg": "HQ (PostgreSQL)",
    "hq-pg-workers": "HQ (PostgreSQL), N server workers",
    "hq-pg-split": "HQ (PostgreSQL), 2 calls a batch",
    "hq-sqlite": "HQ (SQLite)",
    "procrastinate": "procrastinate 3.10 (PostgreSQL)",
    "celery": "Celery 5.7 (Redis)",
}


def hq_variant(name: str, server_workers: int) -> tuple[str, bool, int]:
    """An HQ system's database, whether it completes and claims in two calls, and its server
    processes."""
    db = name.removeprefix("hq-").split("-")[0]
    return db, name.endswith("-split"), server_workers if name.endswith("-workers") else 1


def hq_run(db: str, home: Path, run: Callable[[str, Path], dict[str, Any]]) -> dict[str, Any]:
    """``run(database_url, home)`` against a fresh HQ database: PostgreSQL (dropped after) or
    a SQLite file."""
    home.mkdir(parents=True)
    if db == "sqlite":
        return run(f"sqlite+aiosqlite:///{home / 'hq.db'}", home)
    name = create_database("hq_bench")
    try:
        return run(pg_url(name).replace("postgresql://", "postgresql+psycopg://"), home)
    finally:
        drop_database(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--latency-jobs", type=int, default=200)
    parser.add_argument(
        "--capacity",
        type=int,
        default=16,
        help="HQ claim size per agent (and procrastinate's concurrency)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="throughput rounds, interleaved; the best of each system counts",
    )
    parser.add_argument(
        "--server-workers",
        type=int,
        default=2,
        help="HQ_WORKERS of the hq-pg-workers system (server processes on one port)",
    )
    parser.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated systems")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.role:
        workers: dict[str, Callable[[], None]] = {
            "hq-agent": lambda: run_hq_agent(rest[0], rest[1], int(rest[2]), rest[3] == "split"),
            "hq-latency-agent": lambda: run_latency_agent(rest[0], rest[1]),
            "procrastinate-worker": lambda: run_procrastinate_worker(rest[0], int(rest[1])),
            "celery-worker": lambda: run_celery_worker(rest[0]),
        }
        workers[args.role]()
        return 0
    only = [name for name in SYSTEMS if name in args.only.split(",")]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in only}
    latency: dict[str, dict[str, Any]] = {}
    began, load_before = time.monotonic(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="hq-bench-") as tmp:
        home = Path(tmp)
        try:
            for n in range(args.rounds):
                for name in only:
                    here = home / f"{name}-{n}"
                    if name.startswith("hq-"):
                        db, split, workers = hq_variant(name, args.server_workers)
                        runs[name].append(
                            hq_run(
                                db,
                                here,
                                lambda url, h: hq_throughput(
                                    database_url=url,
                                    home=h,
                                    jobs=args.jobs,
                                    capacity=args.capacity,
                                    split=split,  # noqa: B023 (called before the loop goes on)
                                    workers=workers,  # noqa: B023
                                ),
                            )
                        )
                    elif name == "procrastinate":
                        here.mkdir()
                        runs[name].append(
                            procrastinate_throughput(
                                jobs=args.jobs, concurrency=args.capacity, workers=AGENTS, home=here
                            )
                        )
                    else:
                        here.mkdir()
                        runs[name].append(
                            celery_throughput(jobs=args.jobs, workers=AGENTS, home=here)
                        )
            for name in only if not args.no_latency else ():
                if name.startswith("hq-") and not name.endswith("-split"):
                    db, _, workers = hq_variant(name, args.server_workers)
                    latency[name] = hq_run(
                        db,
                        home / f"{name}-latency",
                        lambda url, h: hq_latency(
                            database_url=url,
                            home=h,
                            samples=args.latency_jobs,
                            workers=workers,  # noqa: B023
                        ),
                    )
        finally:
            stop_all()
    report(
        runs,
        latency,
        args=args,
        elapsed=time.monotonic() - began,
        load=(load_before, os.getloadavg()[0]),
    )
    return 0


def report(
    runs: dict[str, list[dict[str, Any]]],
    latency: dict[str, dict[str, Any]],
    *,
    args: argparse.Namespace,
    elapsed: float,
    load: tuple[float, float],
) -> None:
    rows = {name: max(found, key=lambda r: r["jobs_s"]) for name, found in runs.items() if found}
    labels = LABELS | {"hq-pg-workers": f"HQ (PostgreSQL), {args.server_workers} workers"}
    print(
        f"\nQueue throughput: {args.jobs} no-op jobs enqueued, then drained by {AGENTS} "
        f"agents/workers released together; best of {args.rounds} interleaved round(s)."
    )
    print(
        f"HQ: claim capacity {args.capacity}, each claimed batch completed in one call. "
        f"procrastinate: concurrency {args.capacity}. Celery: -P solo, prefetch 4."
    )
    hq = rows.get("hq-pg")
    print(
        f"{'system':34} {'jobs/s':>8} {'drain s':>8} {'HQ(PG)/x':>9} {'CPU ms/job':>10}"
        f" {'agents':>7}  all rounds (jobs/s)"
    )
    for name, row in rows.items():
        ratio = f"{hq['jobs_s'] / row['jobs_s']:.2f}" if hq else "-"
        every = ", ".join(f"{r['jobs_s']:.0f}" for r in runs[name])
        cpu = f"{row['cpu_ms']:.2f}" if "cpu_ms" in row else "-"
        agents = f"{row['agent_cpu_ms']:.2f}" if "agent_cpu_ms" in row else "-"
        print(
            f"{labels[name]:34} {row['jobs_s']:8.0f} {row['drain_s']:8.2f} {ratio:>9} {cpu:>10}"
            f" {agents:>7}  {every}"
        )
    print(
        "(CPU ms/job: the HQ server processes' own CPU time during the drain, per job; agents: "
        "the agents' together)"
    )
    if latency:
        print(
            f"\nSubmit-to-claim latency: {args.latency_jobs} jobs submitted one at a time, "
            f"{AGENTS} idle agents long-polling (capacity 1)."
        )
        print("ms from the submit call's return to the claim's return (and from the call's start)")
        print(f"{'system':34} {'p50':>8} {'p99':>8} {'p50 start':>10} {'p99 start':>10}")
        for name, lat in latency.items():
            print(
                f"{labels[name]:34} {lat['p50']:8.2f} {lat['p99']:8.2f} "
                f"{lat['p50_start']:10.2f} {lat['p99_start']:10.2f}"
            )
    checks = []
    if hq and "procrastinate" in rows:
        checks.append(
            ("throughput >= procrastinate", hq["jobs_s"] >= rows["procrastinate"]["jobs_s"])
        )
    for name in ("hq-pg", "hq-pg-workers"):
        if name in rows and "celery" in rows:
            ok = rows[name]["jobs_s"] >= rows["celery"]["jobs_s"]
            checks.append((f"(aim) {labels[name]} throughput >= Celery", ok))
        if name in latency:
            lat = latency[name]
            checks.append((f"{labels[name]} latency after the return p50 < 5 ms", lat["p50"] < 5))
            checks.append((f"{labels[name]} latency after the return p99 < 15 ms", lat["p99"] < 15))
            checks.append(
                (f"(aim) {labels[name]} from the start p50 <= 6 ms", lat["p50_start"] <= 6)
            )
            checks.append(
                (f"(aim) {labels[name]} from the start p99 <= 15 ms", lat["p99_start"] <= 15)
            )
    print()
    for label, ok in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'}")
    print(
        f"({elapsed:.0f} s on {os.cpu_count()} CPUs; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after: other work on this machine skews every row)"
    )


if __name__ == "__main__":
    sys.exit(main())
