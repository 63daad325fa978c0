"""The torture engine: real HQ replicas, agents and storage under a fault schedule drawn from a
seed, then a checker that reads every job and its events.

Used by the in-suite torture test (``tests/e2e/test_torture.py``, a few minutes) and by
``bench/torture.py`` (bigger: thousands of jobs, PostgreSQL and S3 outages). The caller starts
the processes and hands them over as ``Killable`` parts of a ``Cluster``; the engine submits the
jobs in waves, runs the protocol-level agents (claim, heartbeat, complete through ``hq.client``,
no containers) and the faults, waits for every job to end and checks the outcome.
"""

from __future__ import annotations

from bench.chaos.check import Verdict, check
from bench.chaos.fleet import FleetStats, ProtocolAgent
from bench.chaos.plan import Fault, Plan, schedule
from bench.chaos.run import CONTAINER_CODE, Cluster, Killable, Torture, container_y, fast_y

__all__ = [
    "CONTAINER_CODE",
    "Cluster",
    "Fault",
    "FleetStats",
    "Killable",
    "Plan",
    "ProtocolAgent",
    "Torture",
    "Verdict",
    "check",
    "container_y",
    "fast_y",
    "schedule",
]
