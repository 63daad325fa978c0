"""Sweeps through the real API: expansion (grid x seeded random draws x repeats), status counts,
the results table and its CSV, and memoised reruns.

One server per database for the module; each test has its own script and queue.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import pytest

from hq.client import HQClient
from hq.schemas.common import JobStatus
from hq.schemas.jobs import JobRead
from tests.fixtures.api import FakeAgent, module_server, publish_fake, unique_queue
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer

RANDOM = {
    "n": 4,
    "seed": 11,
    "params": {
        "alpha": {"low": 0.01, "high": 10, "log": True},
        "mode": {"choices": ["fast", "slow"]},
    },
}


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    with module_server(tmp_path_factory, db=request.param) as live:
        yield live


@pytest.fixture(scope="module")
def submitter(server: LiveServer) -> HQClient:
    return server.client("submitter")


@pytest.fixture
def script(server: LiveServer) -> str:
    return publish_fake(server.client("publisher")).script


@pytest.fixture
def queue() -> str:
    return unique_queue()


def sweep_jobs(client: HQClient, sweep_id: str) -> list[JobRead]:
    page = client.list_jobs(sweep=sweep_id, limit=1000, sort="created_at")
    assert page.next_cursor is None
    return page.items


def param_points(jobs: list[JobRead]) -> Counter[tuple[Any, ...]]:
    return Counter((j.params["n"], j.params["alpha"], j.params["mode"]) for j in jobs)


def test_grid_times_seeded_draws_times_repeats_makes_every_job_once(
    submitter: HQClient, script: str, queue: str
) -> None:
    sweep = submitter.submit_sweep(
        script=script, grid={"n": [1, 2, 3]}, random=RANDOM, repeats=2, queue=queue
    )
    assert sweep.total == 3 * 4 * 2
    assert sweep.counts == {"queued": 24} and sweep.finished is False
    assert sweep.script == script and sweep.script_version == 1
    jobs = sweep_jobs(submitter, sweep.id)
    assert len(jobs) == 24 and {j.sweep_id for j in jobs} == {sweep.id}
    points = param_points(jobs)
    assert len(points) == 12 and set(points.values()) == {2}  # each point, once per repeat
    draws = {(a, m) for _, a, m in points}
    assert len(draws) == 4
    assert all(0.01 <= a <= 10 and m in ("fast", "slow") for a, m in draws)
    assert {n for n, _, _ in points} == {1, 2, 3}
    assert len({j.cache_key for j in jobs}) == 24  # repeats are separate runs, not memoised
    assert {j.queue for j in jobs} == {queue}


def test_the_same_seed_draws_the_same_params_and_another_seed_others(
    submitter: HQClient, script: str, queue: str
) -> None:
    first = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, random=RANDOM, queue=queue)
    again = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, random=RANDOM, queue=queue)
    other = submitter.submit_sweep(
        script=script, grid={"n": [1, 2]}, random={**RANDOM, "seed": 12}, queue=queue
    )
    assert first.id != again.id
    a, b, c = (param_points(sweep_jobs(submitter, s.id)) for s in (first, again, other))
    assert a == b
    assert {p[1] for p in a}.isdisjoint({p[1] for p in c})


def test_fixed_params_apply_to_every_point_and_integer_draws_are_integers(
    submitter: HQClient, script: str, queue: str
) -> None:
    spec = {"n": 6, "seed": 5, "params": {"n": {"low": 1, "high": 100, "integer": True}}}
    sweep = submitter.submit_sweep(
        script=script, params={"mode": "slow", "alpha": 0.5}, random=spec, queue=queue
    )
    jobs = sweep_jobs(submitter, sweep.id)
    assert len(jobs) == 6
    for job in jobs:
        assert job.params["mode"] == "slow" and job.params["alpha"] == 0.5
        assert isinstance(job.params["n"], int) and 1 <= job.params["n"] <= 100


def test_sweep_counts_follow_its_jobs_and_the_results_table_has_params_and_metrics(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    sweep = submitter.submit_sweep(
        script=script, grid={"n": [1, 2, 3], "alpha": [0.5]}, queue=queue, reuse=False
    )
    agent = FakeAgent(server, queue=queue)
    leases = [agent.claim_one() for _ in range(3)]
    by_job = {j.id: j for j in sweep_jobs(submitter, sweep.id)}
    assert submitter.get_sweep(sweep.id).counts == {"running": 3}
    scores = {}
    for lease in leases[:2]:
        n = by_job[lease.job_id].params["n"]
        scores[lease.job_id] = n / 10
        agent.complete(lease, metrics={"score": n / 10, "n": float(n * 100)})
    midway = submitter.get_sweep(sweep.id)
    assert midway.counts == {"succeeded": 2, "running": 1} and midway.finished is False
    agent.complete(leases[2], status=JobStatus.failed, exit_code=3)
    done = submitter.get_sweep(sweep.id)
    assert done.counts == {"succeeded": 2, "failed": 1} and done.finished is True

    table = submitter.sweep_results(sweep.id)
    assert table.param_columns == ["alpha", "mode", "n"]
    assert table.metric_columns == ["metric.n", "score"]  # a metric named like a param
    assert table.columns[:6] == [
        "job_id",
        "status",
        "script_version",
        "sweep_id",
        "repeat",
        "finished_at",
    ]
    assert table.columns[6:] == ["alpha", "mode", "n", "metric.n", "score"]
    assert len(table.rows) == 3
    rows = {r["job_id"]: r for r in table.rows}
    for job_id, score in scores.items():
        row = rows[job_id]
        assert row["status"] == "succeeded" and row["sweep_id"] == sweep.id
        assert row["score"] == pytest.approx(score)
        assert row["n"] == by_job[job_id].params["n"]
        assert row["metric.n"] == pytest.approx(row["n"] * 100)
        assert (row["alpha"], row["mode"], row["repeat"]) == (0.5, "fast", 0)
    failed = rows[leases[2].job_id]
    assert failed["status"] == "failed" and "score" not in failed


def test_sweeps_are_listed_newest_first_with_counts_filtered_by_script_and_paged(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    other = publish_fake(server.client("publisher")).script
    first = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, queue=queue, reuse=False)
    second = submitter.submit_sweep(script=script, grid={"n": [3]}, queue=queue, reuse=False)
    elsewhere = submitter.submit_sweep(script=other, grid={"n": [4]}, queue=queue, reuse=False)
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    agent.complete(lease, metrics={"score": 1.0})

    mine = submitter.list_sweeps(script=script)
    assert [s.id for s in mine.items] == [second.id, first.id] and mine.next_cursor is None
    assert [s.total for s in mine.items] == [1, 2]
    everything = {s.id: s for s in submitter.list_sweeps(limit=200).items}
    assert {first.id, second.id, elsewhere.id} <= set(everything)
    done_in = submitter.get_job(lease.job_id).sweep_id
    for sweep in (first, second, elsewhere):
        listed = everything[sweep.id]
        assert listed.counts == submitter.get_sweep(sweep.id).counts  # each its own jobs
        assert sum(listed.counts.values()) == listed.total
        assert listed.counts.get("succeeded", 0) == (1 if sweep.id == done_in else 0)

    page = submitter.list_sweeps(script=script, limit=1)
    assert [s.id for s in page.items] == [second.id] and page.next_cursor
    rest = submitter.list_sweeps(script=script, limit=1, cursor=page.next_cursor)
    assert [s.id for s in rest.items] == [first.id] and rest.next_cursor is None
    bad = httpx.get(
        f"{server.url}/api/v1/sweeps",
        params={"cursor": "not-a-cursor"},
        headers={"Authorization": f"Bearer {server.token('viewer')}"},
    )
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"


def test_results_as_csv_match_the_json_table(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    sweep = submitter.submit_sweep(script=script, grid={"n": [4, 5]}, queue=queue)
    agent = FakeAgent(server, queue=queue)
    for _ in range(2):
        lease = agent.claim_one()
        agent.complete(lease, metrics={"rmse": math.pi, "rows": 442, "scale": 2.0})
    table = submitter.results(script=script)
    assert len(table.rows) == 2
    # a count stays an integer and a float stays a float, in JSON and in CSV
    assert {(type(r["rows"]), type(r["scale"])) for r in table.rows} == {(int, float)}
    assert submitter.job_result(table.rows[0]["job_id"]).metrics["rows"] == 442
    response = httpx.get(
        f"{server.url}/api/v1/results",
        params={"sweep": sweep.id, "format": "csv"},
        headers={"Authorization": f"Bearer {server.token('viewer')}"},
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert f'filename="{sweep.id}.csv"' in response.headers["content-disposition"]
    reader = csv.DictReader(io.StringIO(response.text))
    assert reader.fieldnames == table.columns
    rows = list(reader)
    assert sorted(r["job_id"] for r in rows) == sorted(r["job_id"] for r in table.rows)
    assert {float(r["rmse"]) for r in rows} == {math.pi}
    assert {(r["rows"], r["scale"]) for r in rows} == {("442", "2.0")}
    json_times = {r["job_id"]: r["finished_at"] for r in table.rows}
    for row in rows:  # ISO 8601, the same time as in JSON
        assert "T" in row["finished_at"], row
        same = datetime.fromisoformat(json_times[row["job_id"]])
        assert datetime.fromisoformat(row["finished_at"]) == same
    assert sorted(int(r["n"]) for r in rows) == [4, 5]


def test_rerunning_a_finished_sweep_reuses_its_succeeded_jobs(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    first = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, queue=queue)
    agent = FakeAgent(server, queue=queue)
    ok = agent.claim_one()
    agent.complete(ok, metrics={"score": 1.0})
    agent.complete(agent.claim_one(), status=JobStatus.failed, exit_code=1)
    rerun = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, queue=queue)
    assert rerun.counts == {"succeeded": 1, "queued": 1}
    reused = [j for j in sweep_jobs(submitter, rerun.id) if j.status == JobStatus.succeeded]
    assert [j.reused_from for j in reused] == [ok.job_id]
    assert reused[0].metrics == {"score": 1.0}
    assert submitter.get_sweep(first.id).finished is True
    assert submitter.sweep_results(rerun.id).rows[0]["job_id"] in {
        j.id for j in sweep_jobs(submitter, rerun.id)
    }
