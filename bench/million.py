"""A million jobs: the figures that must not grow with history, at 10,000 and at 1,000,000.

One fresh PostgreSQL database (``hq_bench_million_<pid>``, dropped after), migrated with HQ's
own migrations, then filled with set-based SQL (``INSERT ... SELECT generate_series``): finished
jobs (85 % succeeded, 10 % failed, 3 % timed out, 2 % cancelled) spread over 3 scripts and
sweeps of 1,000 jobs, each with its events (queued, started, final), a result row when it
succeeded, labels and inputs on one job in ten; 10,000 queued jobs and 1,000 running ones with
healthy leases; a probe script of 2,000 finished jobs. The scale at which every figure is taken
first has 10,000 finished jobs; then the history grows to ``--jobs`` (1,000,000) finished jobs,
the queue is topped up to 10,000 again, and every figure is taken again.

Figures (the HQ server is a real subprocess, the measurements go through ``hq.client`` or HTTP):
claim latency (capacity 1, median), claim/complete throughput (capacity 16), the reaper's tick
(``queue.reap`` + ``queue.due_since``, in this process on its own engine, median), ``GET /jobs``
first page (100 rows) unfiltered and with filters, one sweep's status counts
(``GET /sweeps/{id}``), the CSV results export of one script (per row, and the server's peak
RSS growth during it), and the Dash jobs grid's first rows in Debian's Chromium (bench/dash.py's
measurement: navigation to the first row's status cell drawn, median of warm loads).
Target: no figure more than 1.5x its value at 10,000; the grid's first rows under 1 s.

Run from the repository root: ``python -m bench.million`` (``--jobs 200000`` for a quick look).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench.common import ADMIN_TOKEN, Child, drop_database, free_port, pg_url, stop_all

SCRIPTS = ("bench-a", "bench-b", "bench-c")
PROBE = "bench-probe"
PROBE_JOBS = 2_000
SWEEP_SIZE = 1_000
QUEUED = 10_000
RUNNING = 1_000
SMALL = 10_000
RATIO_LIMIT = 1.5
FIRST_ROWS_BUDGET_S = 1.0
DIGEST = "sha256:" + "c" * 64
LOAD_BATCH = 100_000
INPUTS = (
    '{"data": {"dataset": "bench-data", "version": 1, "sha256": "' + "d" * 64 + '",'
    ' "size": 1000, "filename": "data.csv"}}'
)

MANIFEST_SQL = (
    "jsonb_build_object('name', s.script, 'command', jsonb_build_array('python', 'fit.py'),"
    " 'params', jsonb_build_object('type', 'object', 'properties',"
    " jsonb_build_object('alpha', jsonb_build_object('type', 'number'))),"
    " 'resources', jsonb_build_object('cpus', 1, 'memory', '1g'))"
)


# -- loading ---------------------------------------------------------------------------------
def job_id_sql(expr: str) -> str:
    return f"md5('hq-bench-' || ({expr})::text)::uuid::text"


def load_jobs(conn: psycopg.Connection[Any], *, first: int, count: int, kind: str) -> None:
    """Jobs number ``first`` .. ``first + count - 1`` (the number fixes id, script, sweep, status
    and time), with their events, results, labels and inputs; ``kind``: finished, queued,
    running or probe."""
    has_deadline = bool(
        conn.execute(
            "SELECT 1 FROM information_schema.columns "
            "WHERE table_name = 'jobs' AND column_name = 'deadline_at'"
        ).fetchone()
    )
    status = {
        "finished": "CASE WHEN mod(g, 100) < 85 THEN 'succeeded'"
        " WHEN mod(g, 100) < 95 THEN 'failed'"
        " WHEN mod(g, 100) < 98 THEN 'timed_out' ELSE 'cancelled' END",
        "probe": "'succeeded'",
        "queued": "'queued'",
        "running": "'running'",
    }[kind]
    script = f"'{PROBE}'" if kind == "probe" else f"(ARRAY{list(SCRIPTS)!r})[1 + mod(g, 3)]"
    # History lies in the past (older the higher its number); the queue and the running jobs are
    # newer than all of it.
    created = (
        "now() - interval '1 hour' - g * interval '1 second'"
        if kind in ("finished", "probe")
        else "now() - interval '10 minutes' + mod(g, 10000000) * interval '1 millisecond'"
    )
    sweep_of_g = job_id_sql(f"'sweep-' || g / {SWEEP_SIZE}")
    sweep = f"CASE WHEN mod(g, 10) < 7 THEN {sweep_of_g} END" if kind == "finished" else "NULL"

    finished = kind in ("finished", "probe")
    running = kind == "running"
    deadline_col = ", deadline_at" if has_deadline else ""
    deadline_val = (
        ", now() + interval '1 hour'"
        if has_deadline and running
        else (", NULL" if has_deadline else "")
    )
    conn.execute(
        f"""
        INSERT INTO jobs (id, script_name, script_version, image, digest, manifest, params,
            inputs, status, priority, queue, labels, gpus, attempts, max_attempts, timeout_s,
            reuse, cache_key, sweep_id, repeat, agent_id, lease_token, lease_expires_at,
            attempt_started_at, run_after, cancel_requested, completed_token, exit_code,
            failure_reason, failure_kind, retry_on, max_retries, script_retries, metrics,
            created_by, created_at, started_at, finished_at{deadline_col})
        SELECT {job_id_sql("g")}, s.script, 1, '127.0.0.1:5000/' || s.script, '{DIGEST}',
            {MANIFEST_SQL}, jsonb_build_object('alpha', (mod(g, 97)) / 10.0, 'seed', mod(g, 7)),
            CASE WHEN mod(g, 10) = 0 THEN '{INPUTS}'::jsonb ELSE '{{}}' END,
            {status}, mod(g, 3), 'default',
            CASE WHEN mod(g, 10) = 0 THEN '["linux"]'::jsonb ELSE '[]' END, 0,
            CASE WHEN {"true" if finished or running else "false"} THEN 1 ELSE 0 END, 3, 3600,
            false, md5('key-' || g), {sweep}, 0,
            NULL, {"md5('lease-' || g)" if running else "NULL"},
            {"now() + interval '1 hour'" if running else "NULL"},
            {"now()" if running else (created + " + interval '1 second'" if finished else "NULL")},
            t.created, false, {"md5('lease-' || g)" if finished else "NULL"},
            {"CASE WHEN mod(g, 100) < 85 THEN 0 ELSE 1 END" if finished else "NULL"},
            NULL, NULL, '[]', 0, 0,
            {
            "jsonb_build_object('loss', (mod(g, 1000)) / 1000.0, 'acc', (mod(g, 89)) / 89.0)"
            if finished
            else "'{}'::jsonb"
        },
            NULL, t.created,
            {"t.created + interval '1 second'" if finished or running else "NULL"},
            {"t.created + interval '30 seconds'" if finished else "NULL"}{deadline_val}
        FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g,
            LATERAL (SELECT {script} AS script) AS s,
            LATERAL (SELECT {created} AS created) AS t
        """,
        {"first": first, "last": first + count - 1},
    )
    rng = {"first": first, "last": first + count - 1}
    jobs_of = (
        "FROM generate_series(%(first)s::bigint, %(last)s::bigint) AS g"
        f" JOIN jobs j ON j.id = {job_id_sql('g')}"
    )
    conn.execute(
        f"INSERT INTO job_events (job_id, at, kind, attempt) "
        f"SELECT j.id, j.created_at, 'queued', 0 {jobs_of}",
        rng,
    )
    if finished or running:
        conn.execute(
            f"INSERT INTO job_events (job_id, at, kind, attempt) "
            f"SELECT j.id, j.started_at, 'started', 1 {jobs_of}",
            rng,
        )
    if finished:
        conn.execute(
            f"INSERT INTO job_events (job_id, at, kind, attempt) "
            f"SELECT j.id, j.finished_at, j.status, 1 {jobs_of}",
            rng,
        )
        conn.execute(
            f"""INSERT INTO job_results (job_id, attempt, tables, charts)
            SELECT j.id, 1, jsonb_build_object('scores', jsonb_build_object(
                'columns', jsonb_build_array('epoch', 'loss'),
                'rows', jsonb_build_array(jsonb_build_array(1, 0.5), jsonb_build_array(2, 0.25)))),
                '[]'::jsonb
            {jobs_of} WHERE j.status = 'succeeded'""",
            rng,
        )
    conn.execute(
        f"INSERT INTO job_labels (job_id, label) "
        f"SELECT j.id, 'linux' {jobs_of} WHERE mod(g, 10) = 0",
        rng,
    )
    conn.execute(
        f"INSERT INTO job_inputs (job_id, name, dataset_name, version, sha256) "
        f"SELECT j.id, 'data', 'bench-data', 1, '{'d' * 64}' {jobs_of} WHERE mod(g, 10) = 0",
        rng,
    )


def load_sweeps(conn: psycopg.Connection[Any], *, first: int, last: int) -> None:
    """The sweep rows of finished jobs ``first`` .. ``last`` (sweeps of ``SWEEP_SIZE``)."""
    conn.execute(
        f"""INSERT INTO sweeps (id, script_name, script_version, spec, total, created_at)
        SELECT {job_id_sql("'sweep-' || n")}, (ARRAY{list(SCRIPTS)!r})[1 + mod(n, 3)], 1,
            '{{"grid": {{"alpha": [0, 1]}}}}'::jsonb, {SWEEP_SIZE * 7 // 10},
            now() - n * interval '1000 seconds'
        FROM generate_series(%(a)s::bigint, %(b)s::bigint) AS n ON CONFLICT DO NOTHING""",
        {"a": first // SWEEP_SIZE, "b": last // SWEEP_SIZE},
    )


def load_base(conn: psycopg.Connection[Any]) -> None:
    for script in (*SCRIPTS, PROBE):
        conn.execute(
            "INSERT INTO scripts (name, description, created_at) VALUES (%s, '', now())", [script]
        )
        conn.execute(
            "INSERT INTO script_versions"
            " (script_name, version, image, digest, manifest, created_at)"
            " VALUES (%s, 1, %s, %s, %s, now())",
            [
                script,
                f"127.0.0.1:5000/{script}",
                DIGEST,
                f'{{"name": "{script}", "command": ["python", "fit.py"]}}',
            ],
        )


class Loader:
    """Job numbers: finished 0.., probe, queued and running each in a range of their own."""

    FINISHED, PROBE, QUEUED, RUNNING = 0, 50_000_000, 60_000_000, 70_000_000

    def __init__(self, url: str) -> None:
        self.url = url
        self.finished = 0
        self.queued = 0

    def grow(self, *, finished_to: int, queued_to: int, first: bool) -> float:
        began = time.monotonic()
        with psycopg.connect(self.url, autocommit=True) as conn:
            if first:
                load_base(conn)
                load_jobs(conn, first=self.PROBE, count=PROBE_JOBS, kind="probe")
                load_jobs(conn, first=self.RUNNING, count=RUNNING, kind="running")
            while self.finished < finished_to:
                n = min(LOAD_BATCH, finished_to - self.finished)
                load_jobs(conn, first=self.finished, count=n, kind="finished")
                load_sweeps(conn, first=self.finished, last=self.finished + n - 1)
                self.finished += n
                print(f"  loaded {self.finished:,} finished jobs", flush=True)
            pending = conn.execute("SELECT count(*) FROM jobs WHERE status = 'queued'").fetchone()
            missing = queued_to - int(pending[0] if pending else 0)
            if missing > 0:
                load_jobs(conn, first=self.QUEUED + self.queued, count=missing, kind="queued")
                self.queued += missing
            conn.execute("VACUUM ANALYZE")
        return time.monotonic() - began


# -- measurements ------------------------------------------------------------------------------
def timed(fn: Callable[[], Any], runs: int) -> float:
    """Median seconds of ``runs`` calls, after one warm-up call."""
    fn()
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - began)
    return statistics.median(samples)


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class Bench:
    def __init__(self, *, api: str, dash: str, db_url: str, server_pid: int, runs: int) -> None:
        from hq.client import HQClient

        self.api, self.dash, self.db_url, self.server_pid, self.runs = (
            api,
            dash,
            db_url,
            server_pid,
            runs,
        )
        self.admin = HQClient(api, ADMIN_TOKEN, timeout=300)
        self.agent_token = self.admin.create_token(name="bench-agent", role="agent").token

    def claims(self) -> dict[str, float]:
        from hq.client import HQClient
        from hq.schemas.agents import AgentCreate, CompleteItem
        from hq.schemas.common import JobStatus

        def done(leases: list[Any]) -> list[CompleteItem]:
            return [
                CompleteItem(
                    job_id=x.job_id,
                    lease_token=x.lease_token,
                    status=JobStatus.succeeded,
                    exit_code=0,
                )
                for x in leases
            ]

        with HQClient(self.api, self.agent_token, timeout=60) as client:
            agent = client.register_agent(
                AgentCreate(name=f"bench-{time.time_ns()}", capacity=16, labels=["linux"])
            )
            latencies = []
            for _ in range(200):
                began = time.perf_counter()
                leases = client.claim(agent.id, capacity=1, wait_s=0).leases
                if not leases:
                    raise RuntimeError("the claim found no job")
                latencies.append(time.perf_counter() - began)
                client.complete_many(done(leases))
            began, count = time.perf_counter(), 0
            while count < 3_000:
                leases = client.claim(agent.id, capacity=16, wait_s=0).leases
                if not leases:
                    raise RuntimeError("the queue ran dry")
                client.complete_many(done(leases))
                count += len(leases)
            rate = count / (time.perf_counter() - began)
        return {
            "claim latency ms (p50, capacity 1)": statistics.median(latencies) * 1000,
            "claim+complete jobs/s (capacity 16)": rate,
        }

    def reaper_tick(self) -> float:
        from hq.server import queue
        from hq.server.db.session import create_engine, create_sessionmaker
        from hq.server.db.types import utcnow

        async def run() -> float:
            engine = create_engine(self.db_url)
            maker = create_sessionmaker(engine)
            samples = []
            try:
                for _ in range(self.runs * 4 + 1):
                    since = utcnow()
                    began = time.perf_counter()
                    async with maker() as session, session.begin():
                        await queue.reap(
                            session,
                            backoff_seconds=1,
                            backoff_max_seconds=60,
                            timeout_slack_seconds=30,
                        )
                        await queue.due_since(session, since=since)
                    samples.append(time.perf_counter() - began)
            finally:
                await engine.dispose()
            return statistics.median(samples[1:])

        return asyncio.run(run())

    def listing(self, **filters: Any) -> float:
        return timed(lambda: self.admin.list_jobs(limit=100, **filters), self.runs * 2)

    def sweep_counts(self) -> float:
        sweep_id = self.admin.list_jobs(script=SCRIPTS[0], status="succeeded", limit=1).items
        probe = str(sweep_id[0].sweep_id) if sweep_id and sweep_id[0].sweep_id else None
        if probe is None:
            raise RuntimeError("no sweep to count")
        return timed(lambda: self.admin.get_sweep(probe), self.runs * 2)

    def export(self, script: str) -> tuple[float, int, int]:
        """(seconds, rows, peak RSS growth of the server in kB) of one script's CSV export."""
        before = rss_kb(self.server_pid)
        peak = [before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], rss_kb(self.server_pid))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rows = 0
        began = time.perf_counter()
        with httpx.stream(
            "GET",
            f"{self.api}/api/v1/results",
            params={"script": script, "format": "csv", "status": "succeeded"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            timeout=600,
        ) as answer:
            answer.raise_for_status()
            for chunk in answer.iter_bytes():
                rows += chunk.count(b"\n")
        seconds = time.perf_counter() - began
        stop.set()
        sampler.join()
        return seconds, rows - 1, peak[0] - before

    def first_rows(self) -> float:
        from playwright.sync_api import sync_playwright

        from bench.dash import CHROMIUM_FLAGS, time_first_rows

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path="/usr/bin/chromium", args=CHROMIUM_FLAGS, headless=True
            )
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{self.dash}/login")
            page.fill("#login-username", "bench")
            page.fill("#login-password", "bench-pw")
            page.click("#login-submit")
            page.wait_for_url(f"{self.dash}/jobs")
            time_first_rows(page, self.dash)  # cold: Dash's scripts
            warm = statistics.median(time_first_rows(page, self.dash) for _ in range(self.runs))
            browser.close()
        return warm

    def figures(self) -> dict[str, float]:
        out: dict[str, float] = {}
        out.update(self.claims())
        out["reaper tick ms"] = self.reaper_tick() * 1000
        out["GET /jobs first page ms"] = self.listing() * 1000
        out["GET /jobs ?status=failed ms"] = self.listing(status="failed") * 1000
        out["GET /jobs ?status=queued ms"] = self.listing(status="queued") * 1000
        out[f"GET /jobs ?script={SCRIPTS[1]} ms"] = self.listing(script=SCRIPTS[1]) * 1000
        out["GET /jobs ?script&status=succeeded ms"] = (
            self.listing(script=SCRIPTS[2], status="succeeded") * 1000
        )
        out["GET /jobs ?sort=-finished_at ms"] = self.listing(sort="-finished_at") * 1000
        out["sweep status counts ms"] = self.sweep_counts() * 1000
        probe_s, _, _ = self.export(PROBE)
        out[f"export {PROBE} ({PROBE_JOBS:,} rows) ms"] = probe_s * 1000
        seconds, rows, rss = self.export(SCRIPTS[0])
        out[f"export {SCRIPTS[0]} us/row"] = seconds / max(rows, 1) * 1e6
        out[f"export {SCRIPTS[0]} rows"] = rows
        out[f"export {SCRIPTS[0]} server RSS growth MB"] = rss / 1024
        out["Dash jobs grid first rows ms (Chromium)"] = self.first_rows() * 1000
        return out


# -- main ------------------------------------------------------------------------------------
NOT_RATIOED = (" rows", "RSS growth MB")


def start(cmd: list[str], env: dict[str, str], log: Path, ready_url: str) -> Child:
    child = Child(cmd, log=log, env=env, group=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if child.proc.poll() is not None:
            raise RuntimeError(f"{cmd} exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return child
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{cmd} did not start: {log.read_text()[-2000:]}")


def report(small: dict[str, float], big: dict[str, float], jobs: int) -> None:
    print(
        f"\nHQ at {SMALL:,} and at {jobs:,} finished jobs ({QUEUED:,} queued, {RUNNING:,} running)"
    )
    print(f"{'figure':44}{f'{SMALL:,}':>12}{f'{jobs:,}':>12}{'ratio':>8}  verdict")
    for name, base in small.items():
        value = big[name]
        higher_is_better = "jobs/s" in name
        ratio = (base / value if higher_is_better else value / base) if base and value else 0.0
        if name.endswith(NOT_RATIOED):
            verdict = "(shown)"
        else:
            verdict = "PASS" if ratio <= RATIO_LIMIT else "FAIL"
        if "first rows" in name and value / 1000 >= FIRST_ROWS_BUDGET_S:
            verdict = "FAIL (budget 1 s)"
        print(f"{name:44}{base:12.2f}{value:12.2f}{ratio:7.2f}x  {verdict}")
    print(
        f"(ratio: the figure at {jobs:,} over the one at {SMALL:,}, inverted for jobs/s; target "
        f"<= {RATIO_LIMIT}x. Load average {os.getloadavg()[0]:.1f}: 2 CPUs shared with other work.)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=1_000_000, help="finished jobs at the end")
    parser.add_argument("--runs", type=int, default=5, help="samples per figure (median)")
    parser.add_argument("--keep", action="store_true", help="keep the database (prints its name)")
    args = parser.parse_args()
    name = f"hq_bench_million_{os.getpid()}"
    admin_url = pg_url("postgres")
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg_url(name)
    db_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        from hq.server import migrations

        migrations.upgrade(db_url)
        with tempfile.TemporaryDirectory(prefix="hq-bench-million-") as tmp:
            home = Path(tmp)
            api_port, dash_port = free_port(), free_port()
            api, dash = f"http://127.0.0.1:{api_port}", f"http://127.0.0.1:{dash_port}"
            env = {
                **os.environ,
                "HQ_HOME": str(home),
                "HQ_DATABASE_URL": db_url,
                "HQ_PORT": str(api_port),
                "HQ_HOST": "127.0.0.1",
                "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
                "HQ_LOG_LEVEL": "warning",
                "HQ_URL": api,
                "HQ_DASH_PORT": str(dash_port),
                "HQ_DASH_SECRET_KEY": secrets.token_hex(32),
                "HQ_DASH_USERS": "bench:bench-pw:admin",
            }
            loader = Loader(url)
            took = loader.grow(finished_to=SMALL, queued_to=QUEUED, first=True)
            print(f"loaded {SMALL:,} finished jobs in {took:.1f} s", flush=True)
            server = start(
                [sys.executable, "-m", "hq", "server"],
                env,
                home / "server.log",
                f"{api}/api/v1/health",
            )
            start([sys.executable, "-m", "hq", "dash"], env, home / "dash.log", f"{dash}/login")
            bench = Bench(
                api=api, dash=dash, db_url=db_url, server_pid=server.proc.pid, runs=args.runs
            )
            try:
                small = bench.figures()
            except Exception:
                print((home / "server.log").read_text()[-4000:], file=sys.stderr)
                raise
            print(f"measured at {SMALL:,}", flush=True)
            took = loader.grow(finished_to=args.jobs, queued_to=QUEUED, first=False)
            print(f"grew to {args.jobs:,} finished jobs in {took:.1f} s", flush=True)
            big = bench.figures()
            bench.admin.close()
            report(small, big, args.jobs)
    finally:
        stop_all()
        if args.keep:
            print(f"kept database {name}")
        else:
            drop_database(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
