"""Fleet claims: many protocol-level agents long-polling HQ on PostgreSQL, one replica then two.

``--agents`` agents (default 200: 100 hosts of 2 slots, or 200 hosts of one) each register, then
loop complete-and-claim (the finished job and the next long-poll claim, capacity 1, in one
request; ``--separate-complete``: a complete, then a claim) through ``hq.client``, one thread
per agent, spread over ``--procs`` processes so the bench's own Python is not the bottleneck
(each process's CPU is reported). A submitter feeds no-op jobs at ``--rate`` jobs/s in sweeps of
``--batch`` jobs, up to 8 calls in flight (open loop: a server that falls behind shows as a
growing latency, not as a slower submitter). Each job carries its batch number, so its
submit-to-claim time is taken from the batch's submit call start and from its return, on one
clock (``time.time()``).

Per run: claims/s over the measured window (after ``--warmup`` s), submit-to-claim p50/p99, the
HQ server processes' CPU ms per claimed job (``/proc/<pid>/stat``, children included), the
bench's own CPU, and PASS/FAIL against the targets (>= 800 claims/s, p99 < 50 ms). HQ starts as
bench/queue_speed.py starts it, on a fresh PostgreSQL database dropped after; the two-replica
run has both servers on one database, agents and submits split between them. First, the
request floor (bench/floor.py): the same callers calling health alone, the most requests/s this
machine answers through HQ's stack, printed with the claims/s as a share of it. Always exits 0.
Run from the repository root: ``python -m bench.fleet`` (``--help`` lists the knobs).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.common import (
    ADMIN_TOKEN,
    STEP_TIMEOUT_S,
    Talker,
    cpu_seconds,
    create_database,
    drive_threads,
    drop_database,
    percentile,
    pg_url,
    split_roles,
    stop_all,
)
from bench.floor import floor_run, run_callers
from bench.queue_speed import SCRIPT, publish_noop, start_hq

TARGET_CLAIMS_S = 800.0
TARGET_P99_MS = 50.0
CLAIM_WAIT_S = 10.0
MODULE = "bench.fleet"
SUBMITTERS = 8  # sweep calls in flight at once, at most


# -- agents (child role) -----------------------------------------------------------------------
def run_agents(urls: list[str], token: str, count: int, first: int, separate: bool) -> None:
    """``count`` agent threads; 'ready' once all registered, then claim/complete from 'go' until
    'stop'; finally one JSON line: every claim (batch, time), errors, this process's CPU."""
    from hq.client import HQClient
    from hq.schemas.agents import AgentCreate, CompleteItem
    from hq.schemas.common import JobStatus

    stop = threading.Event()
    go = threading.Event()
    claims: list[tuple[int, float]] = []
    errors: list[str] = []
    registered = threading.Barrier(count + 1)

    def agent(n: int) -> None:
        url = urls[n % len(urls)]
        with HQClient(url, token, timeout=CLAIM_WAIT_S + 30) as client:
            me = client.register_agent(AgentCreate(name=f"fleet-{first + n}", capacity=1))
            registered.wait()
            go.wait()
            done: list[CompleteItem] = []  # reported with the next claim (or on its own)
            while not stop.is_set():
                try:
                    if separate:
                        for item in done:
                            client.complete(item.job_id, item)
                        leases = client.claim(me.id, capacity=1, wait_s=CLAIM_WAIT_S).leases
                    else:  # one request: the finished job and the next claim
                        leases = client.complete_and_claim(
                            me.id, done, capacity=1, wait_s=CLAIM_WAIT_S
                        ).leases
                    done = []
                    now = time.time()
                    for lease in leases:
                        claims.append((int(lease.params.get("b", -1)), now))
                        done.append(
                            CompleteItem(
                                job_id=lease.job_id,
                                lease_token=lease.lease_token,
                                status=JobStatus.succeeded,
                                exit_code=0,
                            )
                        )
                except Exception as exc:  # a bench counts errors, it does not stop on one
                    errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    time.sleep(0.1)  # ``done`` is sent again: a repeated result is safe

    threads = [threading.Thread(target=agent, args=(n,), daemon=True) for n in range(count)]
    cpu_s = drive_threads(threads, ready=registered, go=go, stop=stop, join_s=CLAIM_WAIT_S + 5)
    result = {"claims": claims, "errors": errors[:20], "n_errors": len(errors)}
    print(json.dumps({**result, "cpu_s": cpu_s}), flush=True)


# -- HQ server processes' CPU ------------------------------------------------------------------
def tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its live descendants (a server may run workers)."""
    total, todo = 0.0, [pid]
    while todo:
        here = todo.pop()
        try:
            total += cpu_seconds(here)
            for task in Path(f"/proc/{here}/task").iterdir():
                todo.extend(int(c) for c in (task / "children").read_text().split())
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


# -- one run -----------------------------------------------------------------------------------
def submit_loop(
    admin: Any,
    *,
    rate: float,
    batch: int,
    seconds: float,
    stamps: dict[int, tuple[float, float]],
    offset: int = 0,
) -> int:
    """Sweeps of ``batch`` jobs at ``rate`` jobs/s for ``seconds``, each sent on time from a
    pool of ``SUBMITTERS`` threads (open loop while fewer calls than that are slow at once);
    the jobs sent."""
    gap = batch / rate

    def send(n: int) -> None:
        t_start = time.time()
        grid = {"b": [offset + n], "i": list(range(batch))}
        admin.submit_sweep(script=SCRIPT, grid=grid, reuse=False)
        stamps[offset + n] = (t_start, time.time())

    began = time.monotonic()
    n = 0
    busy: set[Future[None]] = set()
    with ThreadPoolExecutor(max_workers=SUBMITTERS) as pool:
        while time.monotonic() - began < seconds:
            if (ahead := began + n * gap - time.monotonic()) > 0:
                time.sleep(ahead)
            busy = {f for f in busy if not f.done()}
            if len(busy) < SUBMITTERS:  # else this batch is not sent: HQ is behind
                busy.add(pool.submit(send, n))
            n += 1
    return n * batch


def fleet_run(
    database_url: str, *, home: Path, replicas: int, args: argparse.Namespace
) -> dict[str, Any]:
    from hq.client import HQClient

    servers = []
    for r in range(replicas):  # one after the other: the first applies the migrations
        (home / f"hq{r}").mkdir(parents=True)
        servers.append(start_hq(home / f"hq{r}", database_url))
    urls = [url for _, url in servers]
    try:
        clients = [HQClient(url, ADMIN_TOKEN, timeout=STEP_TIMEOUT_S) for url in urls]
        publish_noop(clients[0])
        token = clients[0].create_token(name="fleet-agents", role="agent").token
        together = "separate" if args.separate_complete else "together"
        procs = split_roles(
            MODULE,
            "agents",
            count=args.agents,
            procs=args.procs,
            args_of=lambda first, n: [",".join(urls), token, str(n), str(first), together],
            logs=home,
        )
        time.sleep(1.0)  # every agent is in its long poll
        for proc in procs:
            proc.send("go")
        stamps: dict[int, tuple[float, float]] = {}
        loops = [
            threading.Thread(
                target=submit_loop,
                args=(c,),
                kwargs={
                    "rate": args.rate / len(clients),
                    "batch": args.batch,
                    "seconds": args.seconds,
                    "stamps": stamps,
                    "offset": k * 1_000_000,  # each submitter's batch numbers are its own
                },
            )
            for k, c in enumerate(clients)
        ]
        return measure(servers, procs, clients, loops, stamps, args)
    finally:
        stop_all()


def measure(
    servers: list[tuple[Talker, str]],
    procs: list[Talker],
    clients: list[Any],
    loops: list[threading.Thread],
    stamps: dict[int, tuple[float, float]],
    args: argparse.Namespace,
) -> dict[str, Any]:
    t0, own0 = time.time(), cpu_seconds(os.getpid())
    for loop in loops:
        loop.start()
    time.sleep(args.warmup)
    mark = {"cpu": sum(tree_cpu(s.proc.pid) for s, _ in servers), "t": time.time()}
    for loop in loops:
        loop.join()
    time.sleep(1.0)  # the last batch is claimed
    end = {"cpu": sum(tree_cpu(s.proc.pid) for s, _ in servers), "t": time.time()}
    submitter_cores = (cpu_seconds(os.getpid()) - own0) / (end["t"] - t0)
    for proc in procs:
        proc.send("stop")
    reports = [json.loads(proc.expect(timeout=CLAIM_WAIT_S + 60)) for proc in procs]
    for client in clients:
        client.close()
    claims = [(b, t) for r in reports for b, t in r["claims"]]
    window = [(b, t) for b, t in claims if mark["t"] <= t <= end["t"]]
    after_start = [(t - stamps[b][0]) * 1000 for b, t in window if b in stamps]
    after_return = [(t - stamps[b][1]) * 1000 for b, t in window if b in stamps]
    span = end["t"] - mark["t"]
    return {
        "claims": len(window),
        "claims_s": len(window) / span,
        "p50_start": percentile(after_start, 50) if after_start else float("nan"),
        "p99_start": percentile(after_start, 99) if after_start else float("nan"),
        "p50": percentile(after_return, 50) if after_return else float("nan"),
        "p99": percentile(after_return, 99) if after_return else float("nan"),
        "server_cpu_ms": (end["cpu"] - mark["cpu"]) * 1000 / max(len(window), 1),
        "server_cores": (end["cpu"] - mark["cpu"]) / span,
        "agent_cores": sum(r["cpu_s"] for r in reports) / (end["t"] - t0),
        "agent_cores_max": max(r["cpu_s"] for r in reports) / (end["t"] - t0),
        "submitter_cores": submitter_cores,
        "errors": sum(r["n_errors"] for r in reports),
        "error_sample": [e for r in reports for e in r["errors"]][:3],
        "total_claims": len(claims),
        "sent": len(stamps) * args.batch,
        "offered": int(args.rate * args.seconds),
        "submit_ms": percentile([(b - a) * 1000 for a, b in stamps.values()], 50),
    }


# -- main --------------------------------------------------------------------------------------
def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--procs", type=int, default=4, help="agent processes (threads split)")
    parser.add_argument("--rate", type=float, default=1000.0, help="jobs/s offered")
    parser.add_argument("--batch", type=int, default=50, help="jobs per submitted sweep")
    parser.add_argument("--seconds", type=float, default=20.0, help="submitting time per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds left out at the start")
    parser.add_argument("--replicas", default="1,2", help="comma-separated replica counts")
    parser.add_argument(
        "--separate-complete",
        action="store_true",
        help="complete each job with its own request, then claim (default: complete-and-claim)",
    )
    parser.add_argument(
        "--no-floor", action="store_true", help="skip the health-only request floor run"
    )
    parser.add_argument("--role", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))  # children stopped on the way out
    if args.role == "agents":
        run_agents(rest[0].split(","), rest[1], int(rest[2]), int(rest[3]), rest[4] == "separate")
        return 0
    if args.role == "floor":
        run_callers(rest[0], int(rest[1]))
        return 0
    rows: dict[int, dict[str, Any]] = {}
    floor: dict[str, Any] | None = None
    load_before, began = os.getloadavg(), time.monotonic()
    with tempfile.TemporaryDirectory(prefix="hq-fleet-") as tmp:
        if not args.no_floor:
            floor = in_database(
                functools.partial(
                    floor_run, home=Path(tmp) / "floor", agents=args.agents, procs=args.procs
                ),
                what="floor",
            )
        for replicas in (int(r) for r in args.replicas.split(",")):
            row = in_database(
                functools.partial(
                    fleet_run, home=Path(tmp) / f"r{replicas}", replicas=replicas, args=args
                ),
                what=f"{replicas} replica(s)",
            )
            if row is not None:
                rows[replicas] = row
    report(rows, args=args, load=(load_before, os.getloadavg()), elapsed=time.monotonic() - began)
    if floor is not None:
        report_floor(floor, args=args, rows=rows)
    return 0


def in_database(run: Callable[[str], dict[str, Any]], *, what: str) -> dict[str, Any] | None:
    """``run(database_url)`` on a fresh PostgreSQL database, dropped after; None (reported)
    when it failed."""
    name = create_database("hq_fleet")
    try:
        return run(pg_url(name).replace("postgresql://", "postgresql+psycopg://"))
    except Exception as exc:  # report what ran; a bench exits 0
        print(f"{what}: run failed: {exc}", file=sys.stderr)
        return None
    finally:
        stop_all()
        drop_database(name)


def report_floor(
    floor: dict[str, Any], *, args: argparse.Namespace, rows: dict[int, dict[str, Any]]
) -> None:
    print(
        f"floor (1 replica, the same {args.agents} callers, GET /api/v1/health in a closed loop: "
        f"one SELECT 1 a request): {floor['requests_s']:.0f} requests/s, server "
        f"{floor['server_cpu_ms']:.2f} ms CPU a request ({floor['server_cores']:.2f} cores), "
        f"callers {floor['caller_cores']:.2f} cores, {floor['errors']} errors"
    )
    ratios = ", ".join(
        f"{n} replica(s) {r['claims_s'] / floor['requests_s']:.2f}x" for n, r in rows.items()
    )
    print(
        f"claims/s as a share of the floor: {ratios or '-'}; the target is "
        f"{TARGET_CLAIMS_S / floor['requests_s']:.1f}x the floor on this machine"
    )


def report(
    rows: dict[int, dict[str, Any]],
    *,
    args: argparse.Namespace,
    load: tuple[tuple[float, float, float], tuple[float, float, float]],
    elapsed: float,
) -> None:
    print(
        f"\nFleet claims: {args.agents} agents (capacity 1, long poll {CLAIM_WAIT_S:g} s, "
        f"{'complete then claim' if args.separate_complete else 'complete-and-claim'}) in "
        f"{args.procs} processes; {args.rate:g} jobs/s offered in sweeps of {args.batch} for "
        f"{args.seconds:g} s, the first {args.warmup:g} s left out; HQ on PostgreSQL."
    )
    print(
        f"{'replicas':>8} {'claims':>7} {'claims/s':>9} {'p50':>7} {'p99':>7} {'p50 st':>7} "
        f"{'p99 st':>7} {'srv ms/job':>10} {'srv cores':>9} {'agent cores':>11} "
        f"{'(max proc)':>10} {'submit':>6} {'errors':>6}"
    )
    for replicas, r in rows.items():
        print(
            f"{replicas:>8} {r['claims']:>7} {r['claims_s']:>9.0f} {r['p50']:>7.1f} "
            f"{r['p99']:>7.1f} {r['p50_start']:>7.1f} {r['p99_start']:>7.1f} "
            f"{r['server_cpu_ms']:>10.2f} {r['server_cores']:>9.2f} {r['agent_cores']:>11.2f} "
            f"{r['agent_cores_max']:>10.2f} {r['submitter_cores']:>6.2f} {r['errors']:>6}"
        )
        print(
            f"         jobs offered {r['offered']}, sent {r['sent']}, claimed "
            f"{r['total_claims']}; one sweep submit call took {r['submit_ms']:.0f} ms (p50)"
        )
        for sample in r["error_sample"]:
            print(f"         error: {sample}")
    print(
        "ms: submit-to-claim, from the submitting sweep call's return (p50, p99) and from its "
        "start (st); srv: the HQ server processes' CPU (PostgreSQL's own not included)"
    )
    for replicas, r in rows.items():
        met = r["claims_s"] >= TARGET_CLAIMS_S and r["p99"] < TARGET_P99_MS
        print(
            f"{replicas} replica(s): {'PASS' if met else 'FAIL'} (target >= {TARGET_CLAIMS_S:g} "
            f"claims/s sustained and p99 < {TARGET_P99_MS:g} ms)"
        )
    print(
        f"({elapsed:.0f} s on {os.cpu_count()} CPUs; load average (1, 5, 15 min) "
        f"{' '.join(f'{x:.1f}' for x in load[0])} before, "
        f"{' '.join(f'{x:.1f}' for x in load[1])} after: other work on this machine skews "
        "every row)"
    )


if __name__ == "__main__":
    sys.exit(main())
