"""Prometheus metrics: queue depth, claim latency, job durations, agents, webhook tries.

With several server processes (``hq server --workers N``, ``hq.server.serving``) the counters
and histograms live in files under ``PROMETHEUS_MULTIPROC_DIR``, one per process, and a scrape,
whichever process answers it, sums them all. The two gauges are counts read from the database at
scrape time: they never go to those files.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from hq.server.db.models import Job
from hq.server.db.types import utcnow
from hq.server.settings import METRICS_DIR_ENV

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    300,
)
DURATION_BUCKETS = (0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)


class Metrics:
    """One registry per app, so tests and several apps in one process never collide."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.claim_latency = Histogram(
            "hq_claim_latency_seconds",
            "Time from submission to the first claim of a job",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.claimed = Counter("hq_jobs_claimed", "Leases handed out", registry=self.registry)
        self.completed = Counter(
            "hq_jobs_completed", "Results accepted", ["status"], registry=self.registry
        )
        self.duration = Histogram(
            "hq_job_duration_seconds",
            "Run time of an accepted attempt",
            ["status"],
            buckets=DURATION_BUCKETS,
            registry=self.registry,
        )
        self.starts = Counter(
            "hq_job_starts",
            "Accepted attempts by how their container started (warm or cold)",
            ["kind"],
            registry=self.registry,
        )
        self.webhook_tries = Counter(
            "hq_webhook_tries",
            "Tries to send a webhook delivery, by what became of it: delivered, pending (due "
            "again after a back-off), failed (its last try)",
            ["outcome"],
            registry=self.registry,
        )
        self.counts = Counts()
        self.registry.register(self.counts)

    def observe_claims(self, jobs: Sequence[Job]) -> None:
        now = utcnow()
        for job in jobs:
            self.claimed.inc()
            if job.attempts == 1:
                self.claim_latency.observe((now - job.created_at).total_seconds())

    def observe_completion(self, *, status: str, duration_s: float | None) -> None:
        self.completed.labels(status=status).inc()
        if duration_s is not None:
            self.duration.labels(status=status).observe(duration_s)

    def render(
        self, *, job_counts: dict[tuple[str, str], int], agent_counts: dict[str, int]
    ) -> bytes:
        """Prometheus text, with the gauges of these counts: jobs by (queue, status), agents by
        status (``services.metrics`` reads them from the database)."""
        self.counts.jobs, self.counts.agents = job_counts, agent_counts
        if not os.environ.get(METRICS_DIR_ENV):
            return generate_latest(self.registry)
        every_process = CollectorRegistry()
        MultiProcessCollector(every_process)  # type: ignore[no-untyped-call]
        every_process.register(self.counts)
        return generate_latest(every_process)


class Counts(Collector):
    """The gauges ``hq_jobs`` and ``hq_agents``, from the counts of the scrape being answered."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str], int] = {}
        self.agents: dict[str, int] = {}

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("hq_jobs", "Jobs by queue and status", labels=["queue", "status"])
        for (queue_name, status), count in self.jobs.items():
            jobs.add_metric([queue_name, status], count)
        agents = GaugeMetricFamily("hq_agents", "Agents by status", labels=["status"])
        for status, count in self.agents.items():
            agents.add_metric([status], count)
        return iter((jobs, agents))
