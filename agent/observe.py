"""What the agent learns about a job besides ``results.json``: metrics from its log lines
(``agent/logmetrics.py``) and its container's usage (``agent/usage.py``), merged into the result.

On a name clash ``results.json`` wins over a metric from the logs, and HQ's measurements (the
``hq_`` names) win over both. What was observed is kept in the job folder (``observed.json``)
with the container's end, so a job settled after an agent restart still reports it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from agent.docker_runner import DockerRunner
from agent.logmetrics import LogMetrics
from agent.usage import USAGE_METRICS, UsageSampler
from agent.workspace import Workspace
from hq.schemas.common import Metric
from hq.schemas.manifest import Manifest
from hq.schemas.results import MAX_METRICS, Results

log = logging.getLogger(__name__)

OBSERVED_FILE = "observed.json"


@dataclass
class Observed:
    """Metrics, tables and charts to add to a job's result."""

    log_metrics: dict[str, Metric] = field(default_factory=dict)
    usage: dict[str, Metric] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    charts: list[dict[str, Any]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.log_metrics or self.usage or self.tables)

    def to_json(self) -> dict[str, Any]:
        return {
            "log_metrics": self.log_metrics,
            "usage": self.usage,
            "tables": self.tables,
            "charts": self.charts,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Observed:
        return cls(
            log_metrics=dict(data.get("log_metrics") or {}),
            usage=dict(data.get("usage") or {}),
            tables=dict(data.get("tables") or {}),
            charts=list(data.get("charts") or []),
        )

    def merge(self, results: Results | None) -> Results | None:
        """``results`` (from results.json, or none) with what was observed added."""
        if not self:
            return results
        base = results or Results()
        metrics = {k: v for k, v in base.metrics.items() if k not in USAGE_METRICS}
        metrics.update(self.usage)
        for name, value in self.log_metrics.items():
            if name not in metrics and len(metrics) < MAX_METRICS:
                metrics[name] = value
        added = {name for name in self.tables if name not in base.tables}
        return Results(
            metrics=metrics,
            tables={**base.tables, **{n: self.tables[n] for n in sorted(added)}},
            charts=[*base.charts, *(c for c in self.charts if c.get("table") in added)],
        )


class Observer:
    """Watches one attempt: fed its output lines, told when its container starts and ends."""

    def __init__(self, manifest: Manifest) -> None:
        self.log_metrics = LogMetrics(manifest.metrics_from_logs)
        self.sampler: UsageSampler | None = None
        self.usage: dict[str, Metric] = {}

    def line(self, stream: str, text: str) -> None:
        self.log_metrics.feed(stream, text)

    def started(
        self,
        runner: DockerRunner,
        container_id: str,
        *,
        warm: bool = False,
        cpu_base_s: float | None = None,
    ) -> None:
        """Sample ``container_id`` from now on; a ``warm`` one's wall and CPU time are its
        job's, from the hand-over (``cpu_base_s``: the container's CPU seconds then), not its
        container's, which started the interpreter and preloaded before it waited."""
        self.sampler = UsageSampler(runner, container_id, from_now=warm, cpu_base_s=cpu_base_s)
        self.sampler.start()

    def ended(self) -> None:
        """The container has ended (or is left): sampling stops. Idempotent."""
        sampler, self.sampler = self.sampler, None
        if sampler is not None:
            self.usage = sampler.stop().metrics()
            log.debug("usage from %s: %s", sampler.source, self.usage)

    def observed(self, ws: Workspace) -> Observed:
        """What this attempt observed, kept in the job folder; or, for a job settled after a
        restart (nothing observed in this life), what the folder kept."""
        tables = self.log_metrics.tables()
        found = Observed(
            log_metrics=self.log_metrics.metrics(),
            usage=dict(self.usage),
            tables=tables,
            charts=self.log_metrics.charts(set(tables)),
        )
        if found:
            ws.write_json(OBSERVED_FILE, found.to_json())
            return found
        kept = ws.read_json(OBSERVED_FILE)
        return Observed.from_json(kept) if kept else found
