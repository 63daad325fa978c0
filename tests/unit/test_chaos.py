"""The torture engine's pure parts: the fault schedule is the seed's, and the checker finds
each kind of wrong outcome."""

from __future__ import annotations

from bench.chaos import Plan, Verdict, schedule
from bench.chaos.check import _check_job


def test_the_same_seed_draws_the_same_faults_and_another_seed_others() -> None:
    plan = Plan(seed=7, agent_kills=20, replica_restarts=2, db_restarts=1, s3_outages=1)
    again = schedule(plan)
    assert schedule(plan) == again
    assert schedule(Plan(seed=8, agent_kills=20, replica_restarts=2)) != again
    kinds = [f.kind for f in again]
    assert kinds.count("agent-kill") == 20 and kinds.count("replica-kill") == 2
    assert kinds.count("db-restart") == 1 and kinds.count("s3-outage") == 1
    assert all(plan.duration_s * 0.1 <= f.at <= plan.duration_s * 0.9 for f in again)
    assert [f.at for f in again] == sorted(f.at for f in again)


def _problems(**overrides: object) -> list[str]:
    verdict = Verdict(seed=1)
    fields: dict[str, object] = {
        "job_id": "j",
        "status": "succeeded",
        "reason": None,
        "attempts": 2,
        "events": [
            ("queued", 0),
            ("started", 1),
            ("requeued", 1),
            ("started", 2),
            ("succeeded", 2),
        ],
        "want": 10.0,
        "got": 10.0,
        "results": 1,
        "result_attempt": 2,
        **overrides,
    }
    _check_job(verdict, **fields)  # type: ignore[arg-type]
    return verdict.problems


def test_the_checker_passes_a_job_that_ended_once_with_its_result() -> None:
    assert _problems() == []


def test_the_checker_finds_each_wrong_outcome() -> None:
    assert (
        "ended 2 times"
        in _problems(events=[("started", 1), ("succeeded", 1), ("started", 2), ("succeeded", 2)])[0]
    )
    assert "its params imply" in _problems(got=11.0)[0]
    assert "is failed" in _problems(status="failed", reason="lost")[0]
    assert "accepted results" in _problems(results=2)[0]
    assert "result of attempt 1" in _problems(result_attempt=1)[0]
    assert "started events" in _problems(attempts=3)[0]
