"""Queue speed: HQ's HTTP claim/complete loop against procrastinate and Celery, on this machine.

Throughput: ``--jobs`` no-op jobs are enqueued first, then 2 agents (or workers) are released at
once and drain the queue; jobs/s is jobs / (last completion - release). HQ runs on PostgreSQL (a
fresh database, dropped after) and SQLite; procrastinate on the same PostgreSQL (its own fresh
database); Celery on the local Redis (db ``REDIS_DB`` only, flushed before and after).
Latency: 2 idle HQ agents long-poll with capacity 1; jobs are submitted one at a time and the
time from the submit call's return to the claim's return is taken from one shared clock
(``time.time()`` in both processes).

Everything started here is a child process stopped by its PID at the end, even on failure.
``python bench/queue.py --help`` lists the knobs (jobs, capacity, which systems).
"""

# ruff: noqa: E402
from __future__ import annotations

import os
import sys

# Run as ``python bench/queue.py``, this file's folder would come first on sys.path and this
# module would shadow the standard library's ``queue``: put the repository root there instead.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _HERE]
sys.path.insert(0, os.path.dirname(_HERE))

import argparse
import asyncio
import functools
import json
import logging
import queue
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PG_ADMIN_URL = os.environ.get("HQ_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_DB = int(os.environ.get("HQ_BENCH_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"
ADMIN_TOKEN = "hq_bench-admin-token-" + uuid.uuid4().hex
SCRIPT = "bench-noop"
DIGEST = "sha256:" + "0" * 64
AGENTS = 2
STEP_TIMEOUT_S = 120.0
SERVER_CMD = [sys.executable, "-m", "hq", "server"]  # a profiling run may swap in a wrapper
LATENCY_GAP_S = 0.02  # let both agents return to their long poll between latency samples

_children: list[Child] = []


# -- child processes -------------------------------------------------------------------------
class Child:
    """A subprocess in its own session; stdout lines go to a queue, stderr to a log file."""

    def __init__(
        self,
        cmd: list[str],
        *,
        log: Path,
        env: dict[str, str] | None = None,
        out: queue.Queue[str | None] | None = None,
    ) -> None:
        self.log = log
        with log.open("ab") as err:
            self.proc = subprocess.Popen(
                cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
        self.lines: queue.Queue[str | None] = out if out is not None else queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        _children.append(self)

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, timeout: float = STEP_TIMEOUT_S) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"no answer from {self.proc.args!r} in {timeout:g} s") from None
        if line is None:
            raise RuntimeError(f"{self.proc.args!r} exited: {self.log.read_text()[-2000:]}")
        return line

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def role(
    name: str,
    *args: str,
    log: Path,
    env: dict[str, str] | None = None,
    out: queue.Queue[str | None] | None = None,
) -> Child:
    """This script again, in one of its child roles."""
    return Child(
        [sys.executable, os.path.abspath(__file__), "--role", name, *args],
        log=log,
        env=env,
        out=out,
    )


def stop_all() -> None:
    while _children:
        _children.pop().stop()


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


# -- PostgreSQL databases --------------------------------------------------------------------
def create_database(prefix: str) -> str:
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def pg_url(name: str) -> str:
    return f"{PG_ADMIN_URL.rsplit('/', 1)[0]}/{name}"


# -- HQ ----------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_hq(home: Path, database_url: str) -> tuple[Child, str]:
    import httpx

    port = free_port()
    env = {
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": database_url,
        "HQ_PORT": str(port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "warning",
    }
    server = Child(SERVER_CMD, log=home / "server.log", env=env)
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


def hq_throughput(*, database_url: str, home: Path, jobs: int, capacity: int) -> dict[str, Any]:
    from hq.client import HQClient

    _server, url = start_hq(home, database_url)
    try:
        with HQClient(url, ADMIN_TOKEN, timeout=STEP_TIMEOUT_S) as admin:
            publish_noop(admin)
            token = admin.create_token(name="bench-agent", role="agent").token
            agents = [
                role("hq-agent", url, token, str(capacity), log=home / f"agent{i}.log")
                for i in range(AGENTS)
            ]
            for agent in agents:
                agent.expect()
            started = time.monotonic()
            sweep = admin.submit_sweep(script=SCRIPT, grid={"i": list(range(jobs))}, reuse=False)
            enqueue_s = time.monotonic() - started
            go = time.time()
            for agent in agents:
                agent.send("go")
            reports = [json.loads(agent.expect()) for agent in agents]
            done = admin.get_sweep(sweep.id).counts.get("succeeded", 0)
        if done != jobs or sum(r["done"] for r in reports) != jobs:
            raise RuntimeError(f"HQ finished {done} of {jobs} jobs ({reports})")
        drain = max(r["last"] for r in reports) - go
        return {"jobs_s": jobs / drain, "drain_s": drain, "enqueue_s": enqueue_s}
    finally:
        stop_all()


def hq_latency(*, database_url: str, home: Path, samples: int) -> dict[str, Any]:
    from hq.client import HQClient

    _server, url = start_hq(home, database_url)
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


def run_hq_agent(url: str, token: str, capacity: int) -> None:
    """Register, wait for 'go', then claim a batch and complete it in one call, until a claim
    comes back empty."""
    from hq.client import HQClient
    from hq.schemas.agents import AgentCreate, CompleteItem
    from hq.schemas.common import JobStatus

    with HQClient(url, token) as client:
        agent = client.register_agent(AgentCreate(name=f"bench-{os.getpid()}", capacity=capacity))
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return
        done, last = 0, time.time()
        while leases := client.claim(agent.id, capacity=capacity, wait_s=0).leases:
            answer = client.complete_many(
                [
                    CompleteItem(
                        job_id=lease.job_id,
                        lease_token=lease.lease_token,
                        status=JobStatus.succeeded,
                        exit_code=0,
                    )
                    for lease in leases
                ]
            )
            done += sum(r.accepted for r in answer.results)
            last = time.time()
        print(json.dumps({"done": done, "last": last}), flush=True)


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


# -- procrastinate -----------------------------------------------------------------------------
def procrastinate_app(conninfo: str) -> Any:
    import procrastinate

    # It warns that an app defined in __main__ cannot be imported by name: ours never is.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="bench_noop")
    async def bench_noop() -> None:
        return None

    return app


def procrastinate_throughput(*, jobs: int, concurrency: int, home: Path) -> dict[str, Any]:
    import psycopg

    name = create_database("hq_bench_procrastinate")
    conninfo = pg_url(name)
    try:
        app = procrastinate_app(conninfo)

        async def enqueue() -> None:
            async with app.open_async():
                await app.schema_manager.apply_schema_async()
                await app.tasks["bench_noop"].batch_defer_async(*({} for _ in range(jobs)))

        started = time.monotonic()
        asyncio.run(enqueue())
        enqueue_s = time.monotonic() - started
        workers = [
            role(
                "procrastinate-worker",
                conninfo,
                str(concurrency),
                log=home / f"procrastinate{i}.log",
            )
            for i in range(AGENTS)
        ]
        for worker in workers:
            worker.expect()
        go = time.time()
        for worker in workers:
            worker.send("go")
        for worker in workers:
            worker.proc.wait(timeout=STEP_TIMEOUT_S)
        with psycopg.connect(conninfo) as conn:
            done, last = conn.execute(
                "SELECT count(*), max(at) FROM procrastinate_events WHERE type = 'succeeded'"
            ).fetchone() or (0, None)
        if done != jobs or last is None:
            raise RuntimeError(f"procrastinate finished {done} of {jobs} jobs")
        drain = last.timestamp() - go
        return {"jobs_s": jobs / drain, "drain_s": drain, "enqueue_s": enqueue_s}
    finally:
        stop_all()
        drop_database(name)


def run_procrastinate_worker(conninfo: str, concurrency: int) -> None:
    app = procrastinate_app(conninfo)

    async def work() -> None:
        async with app.open_async():
            print("ready", flush=True)
            if await asyncio.to_thread(sys.stdin.readline) == "go\n":
                await app.run_worker_async(
                    concurrency=concurrency, wait=False, install_signal_handlers=False
                )

    asyncio.run(work())


# -- Celery ------------------------------------------------------------------------------------
@functools.cache
def celery_app() -> Any:
    import celery  # type: ignore[import-untyped]

    app = celery.Celery("bench", broker=REDIS_URL, backend=REDIS_URL)
    app.conf.update(
        task_default_queue="bench",
        broker_connection_retry_on_startup=True,
        result_expires=3600,
        worker_hijack_root_logger=False,
        worker_prefetch_multiplier=4,
    )

    @app.task(name="bench.noop")  # type: ignore[untyped-decorator]
    def noop() -> None:
        return None

    return app


def celery_throughput(*, jobs: int, home: Path) -> dict[str, Any]:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    try:
        app = celery_app()
        workers = [
            role("celery-worker", f"w{i}", log=home / f"celery{i}.log") for i in range(AGENTS)
        ]
        started = time.monotonic()
        ids = [app.tasks["bench.noop"].apply_async().id for _ in range(jobs)]
        enqueue_s = time.monotonic() - started
        for _ in workers:  # each worker announces itself and holds before it consumes
            if r.blpop(["bench:ready"], timeout=int(STEP_TIMEOUT_S)) is None:
                raise RuntimeError("a Celery worker did not start; see its log")
        go = time.time()
        for i in range(AGENTS):
            r.rpush(f"bench:go:w{i}", "go")
        keys = [f"celery-task-meta-{task_id}" for task_id in ids]
        deadline = time.monotonic() + STEP_TIMEOUT_S
        while r.exists(*keys) < jobs:
            if time.monotonic() > deadline:
                raise RuntimeError("Celery did not finish in time")
            time.sleep(0.1)
        metas = [json.loads(raw or b"{}") for raw in r.mget(keys)]
        if any(m["status"] != "SUCCESS" for m in metas):
            raise RuntimeError("some Celery tasks did not succeed")
        last = max(_utc(m["date_done"]) for m in metas)
        drain = last - go
        return {"jobs_s": jobs / drain, "drain_s": drain, "enqueue_s": enqueue_s}
    finally:
        stop_all()
        r.flushdb()


def _utc(text: str) -> float:
    at = datetime.fromisoformat(text)
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def run_celery_worker(name: str) -> None:
    import redis
    from celery.signals import worker_ready  # type: ignore[import-untyped]

    app = celery_app()

    def hold(**_: Any) -> None:  # runs before the event loop's first fetch
        r = redis.Redis.from_url(REDIS_URL)
        r.rpush("bench:ready", name)
        r.blpop([f"bench:go:{name}"], timeout=int(STEP_TIMEOUT_S))

    worker_ready.connect(hold, weak=False)
    app.worker_main(
        [
            "worker",
            "-P",
            "solo",
            "-c",
            "1",
            "-n",
            f"{name}@bench",
            "-l",
            "WARNING",
            "--without-mingle",
            "--without-gossip",
            "--without-heartbeat",
        ]
    )


# -- main ------------------------------------------------------------------------------------
SYSTEMS = ("hq-pg", "procrastinate", "celery", "hq-sqlite")
LABELS = {
    "hq-pg": "HQ (PostgreSQL)",
    "hq-sqlite": "HQ (SQLite)",
    "procrastinate": "procrastinate 3.10 (PostgreSQL)",
    "celery": "Celery 5.7 (Redis)",
}


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
    parser.add_argument("--only", default=",".join(SYSTEMS), help="comma-separated systems")
    parser.add_argument("--no-latency", action="store_true")
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.role:
        workers: dict[str, Callable[[], None]] = {
            "hq-agent": lambda: run_hq_agent(rest[0], rest[1], int(rest[2])),
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
                        runs[name].append(
                            hq_run(
                                name[3:],
                                here,
                                lambda url, h: hq_throughput(
                                    database_url=url, home=h, jobs=args.jobs, capacity=args.capacity
                                ),
                            )
                        )
                    elif name == "procrastinate":
                        here.mkdir()
                        runs[name].append(
                            procrastinate_throughput(
                                jobs=args.jobs, concurrency=args.capacity, home=here
                            )
                        )
                    else:
                        here.mkdir()
                        runs[name].append(celery_throughput(jobs=args.jobs, home=here))
            for name in only if not args.no_latency else ():
                if name.startswith("hq-"):
                    latency[name] = hq_run(
                        name[3:],
                        home / f"{name}-latency",
                        lambda url, h: hq_latency(
                            database_url=url, home=h, samples=args.latency_jobs
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
    print(
        f"\nQueue throughput: {args.jobs} no-op jobs enqueued, then drained by {AGENTS} "
        f"agents/workers released together; best of {args.rounds} interleaved round(s)."
    )
    print(
        f"HQ: claim capacity {args.capacity}, each claimed batch completed in one call. "
        f"procrastinate: concurrency {args.capacity}. Celery: -P solo, prefetch 4."
    )
    hq = rows.get("hq-pg")
    print(f"{'system':34} {'jobs/s':>8} {'drain s':>8} {'HQ(PG)/x':>9}  all rounds (jobs/s)")
    for name, row in rows.items():
        ratio = f"{hq['jobs_s'] / row['jobs_s']:.2f}" if hq else "-"
        every = ", ".join(f"{r['jobs_s']:.0f}" for r in runs[name])
        print(f"{LABELS[name]:34} {row['jobs_s']:8.0f} {row['drain_s']:8.2f} {ratio:>9}  {every}")
    if latency:
        print(
            f"\nSubmit-to-claim latency: {args.latency_jobs} jobs submitted one at a time, "
            f"{AGENTS} idle agents long-polling (capacity 1)."
        )
        print("ms from the submit call's return to the claim's return (and from the call's start)")
        print(f"{'system':34} {'p50':>8} {'p99':>8} {'p50 start':>10} {'p99 start':>10}")
        for name, lat in latency.items():
            print(
                f"{LABELS[name]:34} {lat['p50']:8.2f} {lat['p99']:8.2f} "
                f"{lat['p50_start']:10.2f} {lat['p99_start']:10.2f}"
            )
    checks = []
    if hq and "procrastinate" in rows:
        checks.append(
            ("throughput >= procrastinate", hq["jobs_s"] >= rows["procrastinate"]["jobs_s"])
        )
    if hq and "celery" in rows:
        checks.append(("(aim) throughput >= Celery", hq["jobs_s"] >= rows["celery"]["jobs_s"]))
    if "hq-pg" in latency:
        checks.append(("latency p50 < 5 ms", latency["hq-pg"]["p50"] < 5))
        checks.append(("latency p99 < 15 ms", latency["hq-pg"]["p99"] < 15))
    print()
    for label, ok in checks:
        print(f"target {label}: {'met' if ok else 'MISSED'}")
    print(
        f"({elapsed:.0f} s on {os.cpu_count()} CPUs; load average {load[0]:.1f} before, "
        f"{load[1]:.1f} after: other work on this machine skews every row)"
    )


if __name__ == "__main__":
    sys.exit(main())
