"""The checker: every job of the run, and its events, read straight from the database.

Each job ended exactly once, as succeeded, with the result its params imply; each attempt started
once; at most one accepted result per job, from its last attempt; nothing left queued or running;
every stale complete refused; no container left behind.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench.chaos.fleet import FleetStats

FINAL = ("succeeded", "failed", "timed_out", "cancelled")


@dataclass
class Verdict:
    seed: int
    jobs: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    attempts: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    tally: Counter[str] = field(default_factory=Counter)  # the goal's three: lost, dup, wrong
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        lines = [
            f"torture seed {self.seed}: {self.jobs} jobs, {dict(self.statuses)}, "
            f"attempts {dict(sorted(self.attempts.items()))}",
            f"  lost (not succeeded): {self.tally['lost']}, duplicate accepted results: "
            f"{self.tally['duplicate']}, wrong results: {self.tally['wrong']}",
            *(f"  {k}: {v}" for k, v in self.figures.items()),
            *(f"  PROBLEM {p}" for p in self.problems[:30]),
        ]
        if len(self.problems) > 30:
            lines.append(f"  ... and {len(self.problems) - 30} more problems")
        return "\n".join(lines)


def check(
    *,
    seed: int,
    database_url: str,
    sweep_ids: Sequence[str],
    expected: Callable[[str, dict[str, Any]], float],
    stats: FleetStats,
    leftover_containers: Callable[[], list[str]],
) -> Verdict:
    """``expected(script, params)`` is the metric ``y`` each job must have produced."""
    verdict = Verdict(seed=seed)
    with psycopg.connect(database_url) as conn:
        jobs = conn.execute(
            "SELECT id, script_name, status, params, metrics, attempts, failure_reason "
            "FROM jobs WHERE sweep_id = ANY(%s)",
            (list(sweep_ids),),
        ).fetchall()
        events = conn.execute(
            "SELECT e.job_id, e.kind, e.attempt FROM job_events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.sweep_id = ANY(%s)",
            (list(sweep_ids),),
        ).fetchall()
        results = conn.execute(
            "SELECT r.job_id, r.attempt FROM job_results r JOIN jobs j ON j.id = r.job_id "
            "WHERE j.sweep_id = ANY(%s)",
            (list(sweep_ids),),
        ).fetchall()
        requeues = conn.execute(
            "SELECT e.detail FROM job_events e JOIN jobs j ON j.id = e.job_id "
            "WHERE j.sweep_id = ANY(%s) AND e.kind = 'requeued'",
            (list(sweep_ids),),
        ).fetchall()
    by_job: dict[str, list[tuple[str, int]]] = {}
    for job_id, kind, attempt in events:
        by_job.setdefault(job_id, []).append((kind, attempt))
    accepted = Counter(job_id for job_id, _ in results)
    result_attempt: dict[str, int] = {job_id: attempt for job_id, attempt in results}
    verdict.jobs = len(jobs)
    for job_id, script, status, params, metrics, attempts, reason in jobs:
        verdict.statuses[status] += 1
        verdict.attempts[attempts] += 1
        _check_job(
            verdict,
            job_id=job_id,
            status=status,
            reason=reason,
            attempts=attempts,
            events=by_job.get(job_id, []),
            want=expected(script, params),
            got=(metrics or {}).get("y"),
            results=accepted[job_id],
            result_attempt=result_attempt.get(job_id),
        )
    if stats.stale_accepted:
        verdict.tally["duplicate"] += stats.stale_accepted
        verdict.problems.append(f"{stats.stale_accepted} stale complete(s) were accepted")
    left = leftover_containers()
    if left:
        verdict.problems.append(f"containers left behind: {left}")
    verdict.figures.update(
        {
            "stale completes refused": stats.stale_refused,
            "stale completes accepted": stats.stale_accepted,
            "stale leases not taken away": stats.stale_skipped,
            "protocol completes": stats.completed,
            "completes refused (lease lost)": stats.refused,
            "leases abandoned by crashes": stats.abandoned,
            "failovers between replicas": stats.failovers,
            "protocol agent errors": stats.errors,
            "requeued, by why": dict(Counter(requeue_cause(d) for (d,) in requeues)),
        }
    )
    return verdict


def requeue_cause(detail: str | None) -> str:
    """The failure kind a requeue event names: ``attempt 2 failed (disk-full: ...); ...``."""
    text = detail or ""
    _, found, rest = text.partition("failed (")
    if not found:
        return "lost" if " lost" in text else text.split(";")[0][:40] or "?"
    return rest.split(":")[0].split(")")[0].split(" ")[0] or "?"


def _check_job(
    verdict: Verdict,
    *,
    job_id: str,
    status: str,
    reason: str | None,
    attempts: int,
    events: list[tuple[str, int]],
    want: float,
    got: Any,
    results: int,
    result_attempt: int | None,
) -> None:
    problems = verdict.problems
    ends = [kind for kind, _ in events if kind in FINAL]
    started = [attempt for kind, attempt in events if kind == "started"]
    if status != "succeeded":
        verdict.tally["lost"] += 1
        problems.append(f"job {job_id} is {status} ({reason})")
    if len(ends) != 1:
        problems.append(f"job {job_id} ended {len(ends)} times: {ends}")
    if sorted(started) != list(range(1, attempts + 1)):
        problems.append(f"job {job_id}: attempts {attempts}, started events {sorted(started)}")
    if got != want:
        if status == "succeeded":  # a job that did not succeed is counted as lost
            verdict.tally["wrong"] += 1
        problems.append(f"job {job_id}: y = {got!r}, its params imply {want!r}")
    if results > 1:
        verdict.tally["duplicate"] += 1
        problems.append(f"job {job_id} has {results} accepted results")
    if result_attempt is not None and result_attempt != attempts:
        problems.append(f"job {job_id}: result of attempt {result_attempt}, not {attempts}")
