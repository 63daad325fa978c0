"""The run: jobs submitted in waves, protocol agents started, faults played in order, every job
waited for, then the checker."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.chaos.check import Verdict, check
from bench.chaos.fleet import FleetStats, ProtocolAgent, fast_y

__all__ = ["CONTAINER_CODE", "Cluster", "Killable", "Torture", "container_y", "fast_y"]
from bench.chaos.plan import Fault, Plan, schedule
from hq import errors
from hq.client import HQClient
from hq.schemas.sweeps import SweepCreate

log = logging.getLogger(__name__)

FAST_QUEUE = "fast"
CONTAINER_CODE = (
    "import json, sys, time\n"
    "x, s = int(sys.argv[1]), float(sys.argv[2])\n"
    "time.sleep(s)\n"
    "with open('/hq/outputs/results.json', 'w') as f:\n"
    "    json.dump({'metrics': {'y': x * x}}, f)\n"
)
CONTAINER_PARAMS = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "s": {"type": "number"}},
    "required": ["x", "s"],
}
CONTAINER_ARGS = ["{params.x}", "{params.s}"]


def container_y(x: int) -> float:
    """The result a container job's params imply (``CONTAINER_CODE``)."""
    return float(x * x)


class Killable(Protocol):
    def kill(self) -> None: ...

    def start(self) -> None: ...


@dataclass
class Cluster:
    """What the caller started, for the engine to use and break."""

    replica_urls: list[str]
    admin_token: str
    agent_token: str
    database_url: str  # libpq form, for the checker
    lease_s: float
    fast_script: str  # a published script no container runs (queue ``fast``)
    container_script: str | None  # a published CONTAINER_CODE script (queue ``default``)
    replicas: list[Killable]
    agents: list[Killable]
    leftover_containers: Callable[[], list[str]]
    database: Killable | None = None
    storage: Killable | None = None
    hosts: list[Killable] = field(default_factory=list)  # kill: the host is lost; start: anew
    disks: list[Killable] = field(default_factory=list)  # kill: fill it; start: room again
    links: list[Killable] = field(default_factory=list)  # kill: link down; start: link up


@dataclass
class Torture:
    plan: Plan
    cluster: Cluster
    stats: FleetStats = field(default_factory=FleetStats)
    sweep_ids: list[str] = field(default_factory=list)
    faults_done: Counter[str] = field(default_factory=Counter)

    def run(self, *, drain_timeout_s: float = 180.0) -> Verdict:
        plan, cluster = self.plan, self.cluster
        fleet = [
            ProtocolAgent(
                name=f"torture-{plan.seed}-{i}",
                urls=cluster.replica_urls[i % 2 :] + cluster.replica_urls[: i % 2],
                token=cluster.agent_token,
                admin_token=cluster.admin_token,
                queue=FAST_QUEUE,
                capacity=plan.protocol_capacity,
                lease_s=cluster.lease_s,
                stats=self.stats,
                seed=plan.seed * 1000 + i,
                work_ms=plan.work_ms,
            )
            for i in range(plan.protocol_agents)
        ]
        for agent in fleet:
            agent.start()
        started = time.monotonic()
        submitter = threading.Thread(target=self._submit_waves, args=(started,), daemon=True)
        submitter.start()
        try:
            self._play(schedule(plan), fleet=fleet, started=started)
            submitter.join(timeout=plan.duration_s + 120)
            submitted_s = time.monotonic() - started
            self._wait_all(timeout_s=drain_timeout_s)
            drained_s = time.monotonic() - started
        finally:
            for agent in fleet:
                agent.halt.set()
            for agent in fleet:
                agent.join(timeout=15)
        self._wait_no_containers()
        verdict = check(
            seed=plan.seed,
            database_url=cluster.database_url,
            sweep_ids=self.sweep_ids,
            expected=self._expected,
            stats=self.stats,
            leftover_containers=cluster.leftover_containers,
        )
        verdict.figures.update(
            {
                "faults": dict(self.faults_done),
                "submitted over s": round(submitted_s, 1),
                "all ended after s": round(drained_s, 1),
                "jobs/s overall": round(verdict.jobs / drained_s, 1) if drained_s else 0,
            }
        )
        return verdict

    def _expected(self, script: str, params: dict[str, Any]) -> float:
        x = int(params["x"])
        return fast_y(x) if script == self.cluster.fast_script else container_y(x)

    # -- submissions ------------------------------------------------------------------------
    def _admin(self, what: Callable[[HQClient], Any]) -> Any:
        """``what`` on any replica that answers (tried in turn until one does)."""
        deadline = time.monotonic() + 120
        i = 0
        while True:
            url = self.cluster.replica_urls[i % len(self.cluster.replica_urls)]
            try:
                with HQClient(url, self.cluster.admin_token) as client:
                    return what(client)
            except errors.HQError as exc:
                if not (isinstance(exc, errors.TransportError) or exc.status_code >= 500):
                    raise
                if time.monotonic() > deadline:
                    raise
                i += 1
                time.sleep(0.3)

    def _submit_waves(self, started: float) -> None:
        plan = self.plan
        waves = max(1, int(plan.duration_s))
        container_waves = {int(waves * k / 4) for k in range(4)}
        fast_per_wave, fast_left = divmod(plan.fast_jobs, waves)
        container_per, container_left = divmod(plan.container_jobs, len(container_waves))
        x = 0
        for wave in range(waves):
            delay = started + wave * plan.duration_s / waves - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            n = fast_per_wave + (1 if wave < fast_left else 0)
            if n:
                self._sweep(self.cluster.fast_script, list(range(x, x + n)), queue=FAST_QUEUE)
                x += n
            if wave in container_waves and self.cluster.container_script and plan.container_jobs:
                m = container_per + (1 if container_left > 0 else 0)
                container_left -= 1
                if m:
                    self._sweep(self.cluster.container_script, list(range(x, x + m)), s=2.0)
                    x += m

    def _sweep(self, script: str, xs: list[int], *, queue: str = "default", **fixed: Any) -> None:
        body = SweepCreate(
            script=script,
            grid={"x": xs},
            params=fixed,
            queue=queue,
            reuse=False,
            max_attempts=20,
        )
        sweep = self._admin(lambda c: c.submit_sweep(body))
        self.sweep_ids.append(sweep.id)

    # -- faults -----------------------------------------------------------------------------
    def _play(self, faults: list[Fault], *, fleet: list[ProtocolAgent], started: float) -> None:
        for fault in faults:
            delay = started + fault.at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            log.warning("fault at %.1f s: %s (target %d)", fault.at, fault.kind, fault.target)
            self._one(fault, fleet=fleet)
            self.faults_done[fault.kind] += 1

    def _one(self, fault: Fault, *, fleet: list[ProtocolAgent]) -> None:
        cluster = self.cluster
        if fault.kind == "fleet-crash":
            fleet[fault.target % len(fleet)].crash.set()
            return
        if fault.kind == "stale":
            fleet[fault.target % len(fleet)].stale_wanted += 1
            return

        def pick(parts: list[Killable]) -> Killable | None:
            return parts[fault.target % len(parts)] if parts else None

        part: Killable | None = {
            "agent-kill": pick(cluster.agents),
            "replica-kill": pick(cluster.replicas),
            "db-restart": cluster.database,
            "s3-outage": cluster.storage,
            "host-lost": pick(cluster.hosts),
            "disk-full": pick(cluster.disks),
            "agent-cut": pick(cluster.links),
        }[fault.kind]
        if part is None:
            return
        part.kill()
        time.sleep(fault.down_s)
        part.start()

    # -- the end ----------------------------------------------------------------------------
    def _wait_all(self, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        pending = list(self.sweep_ids)
        while pending and time.monotonic() < deadline:
            pending = [s for s in pending if not self._finished(s)]
            if pending:
                time.sleep(0.5)

    def _finished(self, sweep_id: str) -> bool:
        return bool(self._admin(lambda c: c.get_sweep(sweep_id)).finished)

    def _wait_no_containers(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.cluster.leftover_containers() and time.monotonic() < deadline:
            time.sleep(0.5)
