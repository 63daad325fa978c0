"""The run's shape and its fault schedule, drawn from one seed (the same seed, the same faults)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

FaultKind = Literal[
    "agent-kill",  # SIGKILL a real (container) agent, start it again after ``down_s``
    "fleet-crash",  # a protocol agent forgets its leases and registers anew
    "replica-kill",  # SIGKILL an HQ replica, start it again after ``down_s``
    "stale",  # a protocol agent holds its next lease past the lease, then completes it
    "db-restart",  # stop PostgreSQL for ``down_s``
    "s3-outage",  # stop the S3 server for ``s3_down_s`` (or ``down_s``)
    "host-lost",  # SIGKILL a real agent and lose its host: its containers and folder are gone
    "disk-full",  # fill a real agent's work folder for ``down_s``
    "agent-cut",  # take a real agent's network link down for ``cut_s`` (past its lease)
]


@dataclass(frozen=True)
class Plan:
    seed: int
    fast_jobs: int = 600
    container_jobs: int = 8
    protocol_agents: int = 4
    protocol_capacity: int = 8
    duration_s: float = 45.0  # jobs are submitted, and faults happen, over this long
    agent_kills: int = 3
    fleet_crashes: int = 2
    replica_restarts: int = 1
    stale_completes: int = 4
    db_restarts: int = 0
    s3_outages: int = 0
    down_s: float = 2.0
    hosts_lost: int = 0
    disk_fills: int = 0
    agent_cuts: int = 0
    s3_down_s: float | None = None  # the S3 outage's own length (default ``down_s``)
    cut_s: float = 12.0  # how long a cut-off agent's link is down
    work_ms: tuple[float, float] = (0.0, 20.0)  # a protocol agent's time on one job


@dataclass(frozen=True)
class Fault:
    at: float  # seconds after the start
    kind: FaultKind
    target: int  # which agent or replica (an index; taken modulo the count)
    down_s: float


def schedule(plan: Plan) -> list[Fault]:
    """The faults, ordered by time, spread over the middle of the run (none in the first or
    last tenth, so every fault meets jobs in flight). One fault runs at a time."""
    rng = random.Random(plan.seed)
    counts: list[tuple[FaultKind, int]] = [
        ("agent-kill", plan.agent_kills),
        ("fleet-crash", plan.fleet_crashes),
        ("replica-kill", plan.replica_restarts),
        ("stale", plan.stale_completes),
        ("db-restart", plan.db_restarts),
        ("s3-outage", plan.s3_outages),
        ("host-lost", plan.hosts_lost),
        ("disk-full", plan.disk_fills),
        ("agent-cut", plan.agent_cuts),
    ]
    own: dict[str, float | None] = {"s3-outage": plan.s3_down_s, "agent-cut": plan.cut_s}
    low, high = plan.duration_s * 0.1, plan.duration_s * 0.9
    faults = [
        Fault(
            at=rng.uniform(low, high),
            kind=kind,
            target=rng.randrange(1 << 16),
            down_s=own.get(kind) or plan.down_s * rng.uniform(0.5, 1.5),
        )
        for kind, n in counts
        for _ in range(n)
    ]
    return sorted(faults, key=lambda f: (f.at, f.kind))
