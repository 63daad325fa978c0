"""The request floor of bench/fleet.py: how many requests a second HQ's stack answers here at all.

The fleet's callers (the same processes and threads, the same ``hq.client``) call ``GET
/api/v1/health`` in a closed loop instead of claiming: a request that reads the database once
(``SELECT 1`` in a session of its own) through the same client, uvicorn, FastAPI and
SQLAlchemy, and does nothing else. A claim-and-complete does that and more (two short
transactions, five statements), so the claims/s a fleet run reaches cannot exceed this floor's
requests/s on the same machine; the report prints both, and the target as a multiple of the
floor.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import (
    ADMIN_TOKEN,
    STEP_TIMEOUT_S,
    cpu_seconds,
    drive_threads,
    split_roles,
    stop_all,
)
from bench.queue_speed import start_hq

FLOOR_SECONDS = 8.0


def run_callers(url: str, count: int) -> None:
    """Child role: ``count`` threads calling health from 'go' until 'stop'; then one JSON line
    (calls, errors, this process's CPU in between)."""
    from hq.client import HQClient

    go, stop = threading.Event(), threading.Event()
    calls = [0] * count
    errors = [0] * count

    made = threading.Barrier(count + 1)

    def caller(n: int) -> None:
        with HQClient(url, ADMIN_TOKEN, timeout=STEP_TIMEOUT_S) as client:
            made.wait()  # a client costs CPU to make (its TLS context): not in the window
            go.wait()
            while not stop.is_set():
                try:
                    client.health()
                    calls[n] += 1
                except Exception:  # counted; a bench goes on
                    errors[n] += 1
                    time.sleep(0.1)

    threads = [threading.Thread(target=caller, args=(n,), daemon=True) for n in range(count)]
    cpu_s = drive_threads(threads, ready=made, go=go, stop=stop, join_s=STEP_TIMEOUT_S)
    result = {"calls": sum(calls), "errors": sum(errors), "cpu_s": cpu_s}
    print(json.dumps(result), flush=True)


def floor_run(database_url: str, *, home: Path, agents: int, procs: int) -> dict[str, Any]:
    """One HQ on ``database_url``; ``agents`` callers in ``procs`` processes for
    ``FLOOR_SECONDS``: requests/s, the server's CPU per request and cores, the callers' cores."""
    home.mkdir(parents=True)
    server, url = start_hq(home, database_url)
    try:
        children = split_roles(
            "bench.fleet",
            "floor",
            count=agents,
            procs=procs,
            args_of=lambda _first, n: [url, str(n)],
            logs=home,
        )
        cpu0, t0 = cpu_seconds(server.proc.pid), time.time()
        for child in children:
            child.send("go")
        time.sleep(FLOOR_SECONDS)
        for child in children:
            child.send("stop")
        cpu1, t1 = cpu_seconds(server.proc.pid), time.time()
        reports = [json.loads(child.expect()) for child in children]
    finally:
        stop_all()
    calls = sum(r["calls"] for r in reports)
    return {
        "requests_s": calls / (t1 - t0),
        "server_cpu_ms": (cpu1 - cpu0) * 1000 / max(calls, 1),
        "server_cores": (cpu1 - cpu0) / (t1 - t0),
        "caller_cores": sum(r["cpu_s"] for r in reports) / (t1 - t0),
        "errors": sum(r["errors"] for r in reports),
    }
