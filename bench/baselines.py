"""The baselines bench/queue_speed.py measures HQ against: procrastinate and Celery, on this
machine.

procrastinate runs on the same PostgreSQL as HQ (its own fresh database, dropped after); Celery on
the local Redis (db ``REDIS_DB`` only, flushed before and after). Each throughput function
enqueues ``jobs`` no-op tasks, releases ``workers`` workers together and returns jobs/s over the
drain. The workers are bench/queue_speed.py again in a child role (``--role
procrastinate-worker`` or ``--role celery-worker``), which runs ``run_procrastinate_worker`` or
``run_celery_worker`` here.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.common import STEP_TIMEOUT_S, create_database, drop_database, pg_url, role, stop_all

REDIS_DB = int(os.environ.get("HQ_BENCH_REDIS_DB", "13"))
REDIS_URL = f"redis://127.0.0.1:6379/{REDIS_DB}"


# -- procrastinate -----------------------------------------------------------------------------
def procrastinate_app(conninfo: str) -> Any:
    import procrastinate

    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=conninfo))

    @app.task(name="bench_noop")
    async def bench_noop() -> None:
        return None

    return app


def procrastinate_throughput(
    *, jobs: int, concurrency: int, workers: int, home: Path
) -> dict[str, Any]:
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
        children = [
            role(
                "procrastinate-worker",
                conninfo,
                str(concurrency),
                log=home / f"procrastinate{i}.log",
            )
            for i in range(workers)
        ]
        for child in children:
            child.expect()
        go = time.time()
        for child in children:
            child.send("go")
        for child in children:
            child.proc.wait(timeout=STEP_TIMEOUT_S)
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


def celery_throughput(*, jobs: int, workers: int, home: Path) -> dict[str, Any]:
    import redis

    r = redis.Redis.from_url(REDIS_URL)
    r.flushdb()
    try:
        app = celery_app()
        children = [
            role("celery-worker", f"w{i}", log=home / f"celery{i}.log") for i in range(workers)
        ]
        started = time.monotonic()
        ids = [app.tasks["bench.noop"].apply_async().id for _ in range(jobs)]
        enqueue_s = time.monotonic() - started
        for _ in children:  # each worker announces itself and holds before it consumes
            if r.blpop(["bench:ready"], timeout=int(STEP_TIMEOUT_S)) is None:
                raise RuntimeError("a Celery worker did not start; see its log")
        go = time.time()
        for i in range(workers):
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
