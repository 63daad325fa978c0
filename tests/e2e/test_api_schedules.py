"""Schedules through the real API on both databases: firing once per slot, pause and resume,
sweeps, refusals at creation (nothing written), owners' rights and a revoked creator.

One server per database for the module; each test has its own script and queue.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from hq import errors
from hq.client import HQClient
from hq.schemas.schedules import ScheduleRunRead
from tests.fixtures.api import (
    call,
    count_rows,
    module_server,
    problem,
    publish_fake,
    table_counts,
    unique_name,
    unique_queue,
)
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer


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


def job_body(script: str, **extra: Any) -> dict[str, Any]:
    return {"script": script, "params": {"n": 3}, "queue": unique_queue(), **extra}


def wait_runs(client: HQClient, schedule_id: str, n: int, timeout: float) -> list[ScheduleRunRead]:
    """The schedule's runs, oldest first, once there are at least ``n``."""
    deadline = time.monotonic() + timeout
    while True:
        runs = client.schedule_runs(schedule_id, limit=1000).items[::-1]
        if len(runs) >= n or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def assert_consecutive(runs: list[ScheduleRunRead], step_s: float) -> None:
    gaps = [(b.slot_at - a.slot_at).total_seconds() for a, b in itertools.pairwise(runs)]
    assert gaps == [step_s] * len(gaps), gaps


def test_an_interval_schedule_fires_each_slot_once_and_pause_stops_it(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    created = submitter.create_schedule(
        name=unique_name("every"), kind="job", body=job_body(script), interval_s=1
    )
    assert created.next_at is not None and created.paused is False and created.last_run is None
    assert created.next_at > created.created_at
    runs = wait_runs(submitter, created.id, 4, timeout=15)
    assert len(runs) >= 4
    assert_consecutive(runs, 1.0)
    assert runs[0].slot_at == created.next_at  # the first slot announced is the first fired
    for run in runs:
        assert run.error is None and run.job_id is not None
        job = submitter.get_job(run.job_id)
        assert job.script == script and job.params["n"] == 3
        assert run.fired_at >= run.slot_at
    mine = submitter.list_jobs(script=script, limit=1000).items
    assert {j.id for j in mine} >= {r.job_id for r in runs}
    # Its jobs were submitted as its creator: that token may cancel them, another may not.
    assert runs[0].job_id is not None
    with pytest.raises(errors.Forbidden, match="submitted with another token"):
        server.client("submitter").cancel_job(runs[0].job_id)
    assert submitter.cancel_job(runs[0].job_id).status == "cancelled"

    paused = submitter.pause_schedule(created.id)
    assert paused.paused is True
    before = len(submitter.schedule_runs(created.id, limit=1000).items)
    time.sleep(2.5)
    assert len(submitter.schedule_runs(created.id, limit=1000).items) == before
    assert len(submitter.list_jobs(script=script, limit=1000).items) == before

    resumed = submitter.resume_schedule(created.id)
    assert resumed.paused is False and resumed.next_at is not None
    assert resumed.next_at >= datetime.now(UTC) - timedelta(seconds=1)  # nothing owed from before
    later = wait_runs(submitter, created.id, before + 2, timeout=15)
    assert len(later) >= before + 2
    assert later[before].slot_at >= resumed.next_at
    shown = submitter.get_schedule(created.id)
    assert shown.last_run is not None and shown.last_run.slot_at >= later[-1].slot_at
    submitter.delete_schedule(created.id)


def test_a_sweep_schedule_submits_a_sweep_per_slot(submitter: HQClient, script: str) -> None:
    body = {"script": script, "grid": {"n": [1, 2]}, "queue": unique_queue(), "reuse": False}
    created = submitter.create_schedule(
        name=unique_name("sweep"), kind="sweep", body=body, interval_s=1
    )
    runs = wait_runs(submitter, created.id, 2, timeout=15)
    submitter.pause_schedule(created.id)
    assert len(runs) >= 2
    for run in runs[:2]:
        assert run.sweep_id is not None and run.job_id is None and run.error is None
        sweep = submitter.get_sweep(run.sweep_id)
        assert sweep.total == 2 and sweep.script == script
    assert runs[0].sweep_id != runs[1].sweep_id


def test_a_pipeline_schedule_submits_a_pipeline_per_slot(submitter: HQClient, script: str) -> None:
    step = {"name": "only", "script": script, "params": {"n": 1}, "queue": unique_queue()}
    body = {"name": unique_name("p"), "steps": [step], "reuse": False}
    created = submitter.create_schedule(
        name=unique_name("pipe"), kind="pipeline", body=body, interval_s=1
    )
    runs = wait_runs(submitter, created.id, 2, timeout=15)
    submitter.pause_schedule(created.id)
    for run in runs[:2]:
        assert run.pipeline_id is not None and run.job_id is None and run.error is None
        pipeline = submitter.pipelines.get(run.pipeline_id)
        assert [s.name for s in pipeline.steps] == ["only"] and pipeline.status == "queued"
    assert runs[0].pipeline_id != runs[1].pipeline_id


def test_a_cron_schedule_names_its_next_wall_time_in_its_zone(
    submitter: HQClient, script: str
) -> None:
    created = submitter.create_schedule(
        name=unique_name("cron"),
        kind="job",
        body=job_body(script),
        cron="30 9 * * mon-fri",
        timezone="Europe/Paris",
    )
    assert created.next_at is not None
    local = created.next_at.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute, local.second) == (9, 30, 0)
    assert local.weekday() < 5
    assert timedelta(0) < created.next_at - datetime.now(UTC) <= timedelta(days=4)
    assert created.timing == "30 9 * * mon-fri (Europe/Paris)"
    listed = submitter.list_schedules(limit=200).items
    assert created.id in {s.id for s in listed}
    submitter.delete_schedule(created.id)
    with pytest.raises(errors.NotFound):
        submitter.get_schedule(created.id)


REFUSALS: list[tuple[dict[str, Any], str, str]] = [
    ({"cron": "61 * * * *"}, "cron", "minute: 61 is outside 0-59"),
    ({"cron": "* * * *"}, "cron", "5 fields"),
    ({"cron": "0 0 30 2 *"}, "cron", "matches no date"),
    ({"cron": "0 9 * * funday"}, "cron", "day of week"),
    ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "timezone", "unknown time zone"),
    ({"cron": "0 9 * * *", "interval_s": 60}, "", "exactly one of cron or interval_s"),
    ({}, "", "exactly one of cron or interval_s"),
    ({"interval_s": 0}, "interval_s", "greater than or equal to 1"),
    ({"interval_s": 5, "catch_up": "twice"}, "catch_up", "skip"),
]


@pytest.mark.parametrize(("timing", "field", "says"), REFUSALS, ids=[r[2] for r in REFUSALS])
def test_a_bad_timing_is_a_422_naming_the_field(
    server: LiveServer, script: str, timing: dict[str, Any], field: str, says: str
) -> None:
    token = server.token("submitter")
    before = count_rows(server, "schedules")
    body = {"name": unique_name("bad"), "kind": "job", "body": job_body(script), **timing}
    answer = problem(call(server, token, "POST", "/api/v1/schedules", json=body), 422)
    assert says in answer["message"], answer
    if field:
        assert answer["field"] == field, answer
    assert count_rows(server, "schedules") == before


def test_a_body_its_first_run_would_fail_on_is_a_422_at_creation(
    server: LiveServer, script: str
) -> None:
    token = server.token("submitter")
    cases: list[tuple[str, dict[str, Any], str, str]] = [
        ("job", {"script": "no-such-script"}, "body", "no-such-script"),
        ("job", {"script": script, "params": {"n": 0}}, "body.params", "n"),
        ("job", {"script": script}, "body.params", "n"),  # n is required
        ("job", {"script": script, "params": {"n": 1}, "colour": 1}, "body.colour", "unknown"),
        ("job", {"script": script, "params": {"n": 1}, "inputs": {"x": "d"}}, "body.inputs.x", ""),
        ("job", {"params": {"n": 1}}, "body.script", "required"),
        ("sweep", {"script": script, "grid": {"n": [1, 0]}}, "body", "sweep point 1"),
        ("sweep", {"script": script, "grid": {"n": []}}, "body.grid", "at least one value"),
        ("pipeline", {"name": "pp", "steps": []}, "body.steps", ""),
        (
            "pipeline",
            {"name": "pp", "steps": [{"name": "aa", "script": script, "params": {"n": 0}}]},
            "body",
            "aa",
        ),
    ]
    before = {**table_counts(server), "schedules": count_rows(server, "schedules")}
    for kind, submit_body, field, says in cases:
        body = {"name": unique_name("bad"), "kind": kind, "body": submit_body, "interval_s": 60}
        answer = problem(call(server, token, "POST", "/api/v1/schedules", json=body), 422)
        assert answer["field"].startswith(field), (submit_body, answer)
        assert says in answer["message"], (submit_body, answer)
    assert {**table_counts(server), "schedules": count_rows(server, "schedules")} == before


def test_only_the_creator_or_an_admin_changes_a_schedule(server: LiveServer, script: str) -> None:
    owner, other, viewer = (server.client(r) for r in ("submitter", "submitter", "viewer"))
    created = owner.create_schedule(
        name=unique_name("mine"), kind="job", body=job_body(script), cron="0 0 1 1 *"
    )
    assert created.created_by is not None
    for act in (other.pause_schedule, other.resume_schedule, other.delete_schedule):
        with pytest.raises(errors.Forbidden, match="created with another token"):
            act(created.id)
    assert viewer.get_schedule(created.id).id == created.id
    assert viewer.schedule_runs(created.id).items == []
    assert server.client().pause_schedule(created.id).paused is True  # an admin may
    owner.delete_schedule(created.id)


def test_a_schedule_whose_creator_was_revoked_pauses_saying_why(
    server: LiveServer, script: str
) -> None:
    admin = server.client()
    creator = server.client("submitter", name=unique_name("leaver"))
    me = creator.whoami()
    created = creator.create_schedule(
        name=unique_name("orphan"), kind="job", body=job_body(script), interval_s=1
    )
    admin.revoke_token(me.id)
    deadline = time.monotonic() + 15
    shown = admin.get_schedule(created.id)
    while not shown.paused and time.monotonic() < deadline:
        time.sleep(0.2)
        shown = admin.get_schedule(created.id)
    assert shown.paused and shown.paused_reason and "revoked" in shown.paused_reason
    runs = admin.schedule_runs(created.id).items
    assert runs and runs[0].job_id is None and runs[0].error == shown.paused_reason
    assert all(r.job_id is None for r in runs[:1])


def test_the_cli_creates_lists_shows_pauses_resumes_and_deletes_a_schedule(
    server: LiveServer, script: str
) -> None:
    from tests.e2e.test_api_cli import hq, ok

    token = server.token("submitter")
    body = json.dumps(job_body(script))
    name = unique_name("cli")
    out = ok(hq(server, token, "schedule", "create", name, "--body", body, "--every", "1"))
    schedule_id = out.split()[1].rstrip(":")
    assert "every 1 s" in out
    listed = ok(hq(server, token, "schedule", "list"))
    assert schedule_id in listed and name in listed
    client = server.client()
    assert wait_runs(client, schedule_id, 1, timeout=10)
    shown = ok(hq(server, token, "schedule", "show", schedule_id))
    assert "catch-up skip" in shown and script in shown
    assert ok(hq(server, token, "schedule", "pause", schedule_id)).endswith("next paused\n")
    assert client.get_schedule(schedule_id).paused
    ok(hq(server, token, "schedule", "resume", schedule_id))
    assert not client.get_schedule(schedule_id).paused
    bad = hq(server, token, "schedule", "create", name, "--body", body, "--cron", "0 25 * * *")
    assert bad.returncode == 1 and "hour: 25 is outside 0-23" in bad.stderr
    ok(hq(server, token, "schedule", "delete", schedule_id))
    with pytest.raises(errors.NotFound):
        client.get_schedule(schedule_id)


def test_a_run_that_fails_records_its_error_and_the_schedule_goes_on(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    created = submitter.create_schedule(
        name=unique_name("drift"), kind="job", body=job_body(script), interval_s=1
    )
    assert wait_runs(submitter, created.id, 1, timeout=10)
    # The script's latest version now requires a param the schedule's body does not give.
    schema = {"type": "object", "properties": {"m": {"type": "integer"}}, "required": ["m"]}
    publish_fake(server.client("publisher"), name=script, params=schema)
    deadline = time.monotonic() + 15
    runs = wait_runs(submitter, created.id, 1, timeout=1)
    while sum(r.error is not None for r in runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        runs = wait_runs(submitter, created.id, 1, timeout=1)
    submitter.pause_schedule(created.id)
    failed = [r for r in runs if r.error is not None]
    assert len(failed) >= 2, runs  # each slot spent, the schedule still firing
    assert all(r.job_id is None and "'m' is a required property" in (r.error or "") for r in failed)
    assert_consecutive(runs, 1.0)
    assert not submitter.get_schedule(created.id).paused_reason
