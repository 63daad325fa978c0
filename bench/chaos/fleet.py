"""Protocol-level agents: claim, heartbeat and complete through ``hq.client``, no containers.

Each computes the result its job's params imply (``fast_y``), fails over between replicas when
one is away, and obeys two faults: a crash (its leases are forgotten, it registers anew) and a
stale complete (its next lease is held without heartbeats until HQ has given the job to someone
else, then completed: HQ must refuse it).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from hq import errors
from hq.client import HQClient
from hq.schemas.agents import AgentCreate, JobOutcome, Lease
from hq.schemas.common import JobStatus
from hq.schemas.results import Results

log = logging.getLogger(__name__)
T = TypeVar("T")


def fast_y(x: int) -> float:
    """The result a fast job's params imply."""
    return float(7 * x + 3)


@dataclass
class FleetStats:
    """What the protocol agents saw, summed over all of them."""

    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    completed: int = 0
    heartbeats: int = 0
    failovers: int = 0
    crashes: int = 0
    abandoned: int = 0
    refused: int = 0  # a normal complete refused (its lease was lost): the job runs again
    stale_refused: int = 0
    stale_accepted: int = 0  # must stay 0
    stale_skipped: int = 0  # the lease was never taken away (not stale after all)
    errors: int = 0  # anything else a protocol agent met (logged)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, n in counts.items():
                setattr(self, name, getattr(self, name) + n)


class ProtocolAgent(threading.Thread):
    def __init__(
        self,
        *,
        name: str,
        urls: list[str],
        token: str,
        admin_token: str,
        queue: str,
        capacity: int,
        lease_s: float,
        stats: FleetStats,
        seed: int,
        work_ms: tuple[float, float],
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.clients = [HQClient(url, token) for url in urls]
        self.admins = [HQClient(url, admin_token) for url in urls]
        self.at = 0
        self.queue = queue
        self.capacity = capacity
        self.lease_s = lease_s
        self.stats = stats
        self.rng = random.Random(seed)
        self.work_ms = work_ms
        self.halt = threading.Event()
        self.crash = threading.Event()
        self.stale_wanted = 0
        self.agent_id = ""

    # -- failover ---------------------------------------------------------------------------
    def _call(self, what: Callable[[HQClient], T], *, admin: bool = False) -> T:
        """``what`` on the current replica; on a transport error or 5xx, the next one."""
        while True:
            pool = self.admins if admin else self.clients
            try:
                return what(pool[self.at % len(pool)])
            except errors.HQError as exc:
                if not (isinstance(exc, errors.TransportError) or exc.status_code >= 500):
                    raise
                self.at += 1
                self.stats.add(failovers=1)
                if self.halt.wait(0.2):
                    raise

    def _register(self) -> None:
        body = AgentCreate(name=self.name, capacity=self.capacity, queues=[self.queue])
        self.agent_id = self._call(lambda c: c.register_agent(body)).id

    # -- the loop ---------------------------------------------------------------------------
    def run(self) -> None:
        try:
            self._register()
            while not self.halt.is_set():
                try:
                    self._round()
                except Exception as exc:  # counted: the checker's figures show it
                    if self.halt.is_set():
                        break
                    log.warning("protocol agent %s: %r", self.name, exc)
                    self.stats.add(errors=1)
                    self.halt.wait(0.2)
        finally:
            for client in [*self.clients, *self.admins]:
                client.close()

    def _round(self) -> None:
        """One claim and its leases (or a crash: the leases forgotten, a new registration)."""
        answer = self._call(lambda c: c.claim(self.agent_id, capacity=self.capacity, wait_s=1.0))
        for lease in answer.leases:
            if self.crash.is_set():
                self.stats.add(abandoned=1)
                continue
            self._one(lease)
        if self.crash.is_set():
            self.crash.clear()
            self.stats.add(crashes=1)
            self._register()

    def _one(self, lease: Lease) -> None:
        if self.stale_wanted > 0:
            self.stale_wanted -= 1
            self._stale(lease)
            return
        low, high = self.work_ms
        time.sleep(self.rng.uniform(low, high) / 1000)
        try:
            if self.rng.random() < 0.3:
                self._call(lambda c: c.lease(lease.job_id, token=lease.lease_token).heartbeat())
                self.stats.add(heartbeats=1)
            self._complete(lease)
            self.stats.add(completed=1)
        except errors.Conflict:
            self.stats.add(refused=1)

    def _complete(self, lease: Lease) -> None:
        outcome = JobOutcome(
            status=JobStatus.succeeded,
            exit_code=0,
            results=Results(metrics={"y": fast_y(int(lease.params["x"]))}),
        )
        self._call(lambda c: c.lease(lease.job_id, token=lease.lease_token).complete(outcome))

    def _stale(self, lease: Lease) -> None:
        """No heartbeats until HQ has taken the lease away, then complete it anyway."""
        deadline = time.monotonic() + self.lease_s * 6 + 10
        while time.monotonic() < deadline and not self.halt.is_set():
            job = self._call(lambda c: c.get_job(lease.job_id), admin=True)
            if job.attempts > lease.attempt or job.status != "running":
                break
            time.sleep(0.2)
        else:
            self.stats.add(stale_skipped=1)
            try:
                self._complete(lease)
            except errors.Conflict:
                self.stats.add(refused=1)
            return
        try:
            self._complete(lease)
        except errors.Conflict:
            self.stats.add(stale_refused=1)
            return
        self.stats.add(stale_accepted=1)
        log.error("a stale complete of job %s was accepted", lease.job_id)
