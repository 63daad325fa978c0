"""A job's life through the real API: submit, list and page, show, cancel, wait, idempotency,
memoisation, unschedulable jobs, logs, metrics and health.

One server per database for the module. Each test uses its own script and its own queue, and its
fake agent serves only that queue, so no test can claim another's job.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from hq import errors
from hq.client import HQClient
from hq.client import jobs as client_jobs
from hq.schemas.agents import CompleteRequest
from hq.schemas.common import JobStatus
from hq.schemas.jobs import JobRead
from tests.fixtures.api import FakeAgent, module_server, publish_fake, unique_name, unique_queue
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


@pytest.fixture(scope="module")
def viewer(server: LiveServer) -> HQClient:
    return server.client("viewer")


@pytest.fixture(scope="module")
def publisher(server: LiveServer) -> HQClient:
    return server.client("publisher")


@pytest.fixture
def script(publisher: HQClient) -> str:
    return publish_fake(publisher).script


@pytest.fixture
def queue() -> str:
    return unique_queue()


def test_a_submitted_job_pins_the_version_fills_defaults_and_shows_its_events(
    server: LiveServer, publisher: HQClient, submitter: HQClient, viewer: HQClient, queue: str
) -> None:
    first = publish_fake(publisher)
    job = submitter.submit_job(
        script=first.script, params={"n": 3}, queue=queue, priority=5, labels=["fast-disk"]
    )
    assert job.status == JobStatus.queued
    assert (job.script, job.script_version, job.digest) == (first.script, 1, first.digest)
    assert job.params == {"n": 3, "alpha": 1.0, "mode": "fast"}  # schema defaults filled in
    assert (job.queue, job.priority, job.labels, job.attempts) == (queue, 5, ["fast-disk"], 0)
    assert job.timeout_s == 600  # the manifest's
    second = publish_fake(publisher, name=first.script)
    assert second.version == 2
    later = submitter.submit_job(script=first.script, params={"n": 3}, queue=queue)
    pinned = submitter.submit_job(script=f"{first.script}@1", params={"n": 3}, queue=queue)
    assert (later.script_version, later.digest) == (2, second.digest)
    assert (pinned.script_version, pinned.digest) == (1, first.digest)
    shown = viewer.get_job(job.id)
    assert shown.id == job.id and shown.status == JobStatus.queued
    assert [e.kind for e in shown.events] == ["queued"]
    assert shown.created_at.tzinfo is not None


def _page_all(client: HQClient, **filters: Any) -> tuple[list[JobRead], int]:
    items: list[JobRead] = []
    cursor = None
    pages = 0
    while True:
        page = client.list_jobs(limit=10, cursor=cursor, **filters)
        pages += 1
        assert len(page.items) <= 10
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items, pages
        assert pages < 10, "paging does not end"


def test_listing_pages_through_25_jobs_with_no_duplicates_in_every_sort_order(
    submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    submitted = [
        submitter.submit_job(script=script, params={"n": i + 1}, queue=queue, priority=i % 3)
        for i in range(25)
    ]
    for job in submitted[::5]:  # five end (cancelled), so finished_at has values and nulls
        submitter.cancel_job(job.id)
    ids = {j.id for j in submitted}
    expected_keys = {
        "-created_at": lambda j: (j.created_at, j.id),
        "created_at": lambda j: (j.created_at, j.id),
        "priority": lambda j: (j.priority, j.id),
        "-priority": lambda j: (j.priority, j.id),
        "status": lambda j: (j.status.value, j.id),
        "-status": lambda j: (j.status.value, j.id),
        "finished_at": lambda j: (j.finished_at or datetime.max.replace(tzinfo=UTC), j.id),
        "-finished_at": lambda j: (j.finished_at or datetime.max.replace(tzinfo=UTC), j.id),
        "script": lambda j: (j.script, j.id),
    }
    for sort, key in expected_keys.items():
        items, pages = _page_all(viewer, script=script, sort=sort)
        got = [j.id for j in items]
        assert len(got) == len(set(got)) == 25, f"{sort}: duplicates or gaps"
        assert set(got) == ids
        assert pages == 3
        want = sorted(items, key=key, reverse=sort.startswith("-"))
        assert got == [j.id for j in want], f"{sort}: wrong order"


def test_listing_filters_by_status_script_queue_and_creation_time(
    submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    jobs = [submitter.submit_job(script=script, params={"n": 1}, queue=queue) for _ in range(4)]
    cut = jobs[2].created_at
    submitter.cancel_job(jobs[0].id)
    other_queue = unique_queue()
    elsewhere = submitter.submit_job(script=script, params={"n": 1}, queue=other_queue)
    cancelled = viewer.list_jobs(script=script, status="cancelled").items
    assert [j.id for j in cancelled] == [jobs[0].id]
    both = viewer.list_jobs(script=script, status=["queued", "cancelled"]).items
    assert len(both) == 5
    assert [j.id for j in viewer.list_jobs(queue=other_queue).items] == [elsewhere.id]
    assert len(viewer.list_jobs(queue=queue, script=script).items) == 4
    after = viewer.list_jobs(script=script, created_after=cut.isoformat(), queue=queue).items
    assert {j.id for j in after} == {jobs[2].id, jobs[3].id}
    before = viewer.list_jobs(script=script, created_before=cut.isoformat(), queue=queue).items
    assert {j.id for j in before} == {jobs[0].id, jobs[1].id}
    assert viewer.list_jobs(script=unique_name()).items == []


def test_cancelling_a_queued_job_ends_it_at_once_and_no_agent_gets_it(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    cancelled = submitter.cancel_job(job.id)
    assert cancelled.status == JobStatus.cancelled and cancelled.finished_at is not None
    detail = viewer.get_job(job.id)
    assert [e.kind for e in detail.events] == ["queued", "cancelled"]
    assert detail.failure_reason == "cancelled while queued"
    assert detail.events[-1].detail == "while queued"  # the timeline reads "cancelled while queued"
    agent = FakeAgent(server, queue=queue)
    assert agent.client.claim(agent.agent.id, capacity=1, wait_s=0).leases == []


def test_cancelling_a_running_job_reaches_the_agent_on_its_heartbeat(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    assert lease.job_id == job.id and lease.attempt == 1
    assert agent.client.heartbeat(job.id, lease_token=lease.lease_token).cancel_requested is False
    asked = submitter.cancel_job(job.id)
    assert asked.status == JobStatus.running and asked.cancel_requested is True
    beat = agent.client.heartbeat(job.id, lease_token=lease.lease_token)
    assert beat.cancel_requested is True
    assert beat.lease_expires_at > datetime.now(UTC)
    assert agent.complete(lease, status=JobStatus.cancelled, exit_code=137) == "cancelled"
    detail = viewer.get_job(job.id)
    assert detail.status == JobStatus.cancelled
    assert [e.kind for e in detail.events] == ["queued", "started", "cancel_requested", "cancelled"]
    with pytest.raises(errors.Conflict):
        submitter.cancel_job(job.id)


def complete_later(
    agent: FakeAgent, *, delay_s: float, metrics: dict[str, Any]
) -> tuple[threading.Thread, dict[str, Any]]:
    """A started thread in which ``agent`` claims one job, holds it ``delay_s``, then completes
    it with ``metrics``; what it saw: ``completed_at`` (monotonic), or the ``error`` it hit."""
    seen: dict[str, Any] = {}

    def work() -> None:
        try:
            lease = agent.claim_one(wait_s=10)
            time.sleep(delay_s)
            seen["completed_at"] = time.monotonic()
            agent.complete(lease, metrics=metrics)
        except Exception as exc:  # surfaced by the main thread's assertions
            seen["error"] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread, seen


def test_wait_returns_the_finished_job_as_soon_as_an_agent_completes_it(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    thread, seen = complete_later(
        FakeAgent(server, queue=queue), delay_s=0.5, metrics={"rmse": 0.25}
    )
    started = time.monotonic()
    done = submitter.submit_job(script=script, params={"n": 2}, queue=queue, wait_s=20)
    answered = time.monotonic()
    thread.join(10)
    assert "error" not in seen, seen
    assert done.status == JobStatus.succeeded and done.metrics == {"rmse": 0.25}
    assert answered - started < 10
    assert answered - seen["completed_at"] < 2.0  # woken by the completion, not a poll


def test_wait_gives_up_after_its_time_with_the_job_still_queued(
    submitter: HQClient, script: str, queue: str
) -> None:
    started = time.monotonic()
    job = submitter.submit_job(script=script, params={"n": 2}, queue=queue, wait_s=1.0)
    elapsed = time.monotonic() - started
    assert job.status == JobStatus.queued
    assert 0.9 <= elapsed < 5


def test_a_wait_longer_than_one_request_is_several_long_polls(
    server: LiveServer,
    submitter: HQClient,
    viewer: HQClient,
    script: str,
    queue: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``--wait 3600`` works: the client waits in turns of at most the server's one-request
    wait (shrunk here to 0.4 s so that one job takes several turns)."""
    monkeypatch.setattr(client_jobs, "MAX_WAIT_SECONDS", 0.4)
    thread, seen = complete_later(FakeAgent(server, queue=queue), delay_s=1.5, metrics={"rows": 3})
    done = submitter.submit_job(script=script, params={"n": 2}, queue=queue, wait_s=30)
    answered = time.monotonic()
    thread.join(10)
    assert "error" not in seen, seen
    assert done.status == JobStatus.succeeded and done.metrics == {"rows": 3}
    assert answered - seen["completed_at"] < 1.0

    queued = submitter.submit_job(script=script, params={"n": 3}, queue=unique_queue())
    started = time.monotonic()
    still = viewer.wait_job(queued.id, timeout_s=1.0)
    assert still.status == JobStatus.queued and 0.9 <= time.monotonic() - started < 5
    assert [e.kind for e in still.events] == ["queued"]  # the detail, with its timeline
    with pytest.raises(errors.NotFound):
        viewer.wait_job("no-such-job", timeout_s=1.0)
    # past the server's one-request limit: a 422 that names the field
    response = httpx.get(
        f"{server.url}/api/v1/jobs/{queued.id}",
        params={"wait": 301},
        headers={"Authorization": f"Bearer {server.token('viewer')}"},
    )
    assert response.status_code == 422 and response.json()["field"] == "wait"


def test_the_same_idempotency_key_and_body_return_the_first_job(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    token = server.token("submitter")
    key = unique_name("key")
    body = {"script": script, "params": {"n": 4}, "queue": queue}
    answers = [
        httpx.post(
            f"{server.url}/api/v1/jobs",
            json=body,
            timeout=30,
            headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
        )
        for _ in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 200, 200]
    assert len({a.json()["id"] for a in answers}) == 1
    with HQClient(server.url, token) as same_token:
        again = same_token.submit_job(
            script=script, params={"n": 4}, queue=queue, idempotency_key=key
        )
        assert again.id == answers[0].json()["id"]
        with pytest.raises(errors.IdempotencyMismatch):
            same_token.submit_job(script=script, params={"n": 5}, queue=queue, idempotency_key=key)
    assert len(viewer.list_jobs(script=script).items) == 1
    # Keys belong to the token that sent them: another client's identical key is its own.
    other = submitter.submit_job(script=script, params={"n": 4}, queue=queue, idempotency_key=key)
    assert other.id != answers[0].json()["id"]
    assert len(viewer.list_jobs(script=script).items) == 2


def test_reuse_returns_a_succeeded_identical_job_at_once_with_its_result(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    agent = FakeAgent(server, queue=queue)
    origin = submitter.submit_job(script=script, params={"n": 7}, queue=queue)
    lease = agent.claim_one()
    agent.complete(
        lease, metrics={"r2": 0.9}, tables={"residuals": [{"fitted": 1.0, "residual": 0.1}]}
    )
    # Defaults filled in make {"n": 7} and {"n": 7, "alpha": 1.0} the same request.
    reused = submitter.submit_job(
        script=script, params={"n": 7, "alpha": 1.0}, queue=queue, reuse=True
    )
    assert reused.id != origin.id
    assert reused.status == JobStatus.succeeded and reused.reused_from == origin.id
    assert reused.metrics == {"r2": 0.9} and reused.cache_key == origin.cache_key
    result = viewer.job_result(reused.id)
    assert result.reused_from == origin.id and result.metrics == {"r2": 0.9}
    assert result.tables == {"residuals": [{"fitted": 1.0, "residual": 0.1}]}
    twice = submitter.submit_job(script=script, params={"n": 7}, queue=queue, reuse=True)
    assert twice.reused_from == origin.id  # points at the job that ran, not at a copy
    assert [e.kind for e in viewer.get_job(reused.id).events] == ["queued", "succeeded"]
    fresh = submitter.submit_job(script=script, params={"n": 7}, queue=queue, reuse=False)
    other = submitter.submit_job(script=script, params={"n": 8}, queue=queue, reuse=True)
    assert fresh.status == other.status == JobStatus.queued
    assert fresh.reused_from is None and other.reused_from is None


def test_a_failed_job_is_never_reused(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    agent = FakeAgent(server, queue=queue)
    submitter.submit_job(script=script, params={"n": 9}, queue=queue)
    agent.complete(agent.claim_one(), status=JobStatus.failed, exit_code=2)
    again = submitter.submit_job(script=script, params={"n": 9}, queue=queue, reuse=True)
    assert again.status == JobStatus.queued and again.reused_from is None


def test_a_job_no_live_agent_could_run_says_why_until_one_can(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    FakeAgent(server, queue=queue, labels=["cpu"])
    label = unique_name("gpu")
    stuck = submitter.submit_job(script=script, params={"n": 1}, queue=queue, labels=[label])
    assert stuck.status == JobStatus.queued
    assert stuck.unschedulable_reason is not None
    assert label in stuck.unschedulable_reason and queue in stuck.unschedulable_reason
    fine = submitter.submit_job(script=script, params={"n": 1}, queue=queue, labels=["cpu"])
    assert fine.unschedulable_reason is None
    nowhere = submitter.submit_job(script=script, params={"n": 1}, queue=unique_queue())
    assert (
        nowhere.unschedulable_reason is not None and nowhere.queue in nowhere.unschedulable_reason
    )
    FakeAgent(server, queue=queue, labels=["cpu", label])
    assert viewer.get_job(stuck.id).unschedulable_reason is None


def test_a_job_needing_gpus_waits_with_a_reason_until_an_agent_with_gpus_registers(
    server: LiveServer, publisher: HQClient, submitter: HQClient, viewer: HQClient, queue: str
) -> None:
    script = publish_fake(publisher, gpus=2, labels=["cuda"]).script
    FakeAgent(server, queue=queue, labels=["cuda"])
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    assert job.labels == ["cuda"]  # the manifest's labels are the job's
    assert job.unschedulable_reason is not None and "2 GPU(s)" in job.unschedulable_reason
    gpu_agent = FakeAgent(server, queue=queue, labels=["cuda"], gpus=2)
    assert viewer.get_job(job.id).unschedulable_reason is None
    assert gpu_agent.claim_one().job_id == job.id


def test_an_agent_may_touch_only_the_jobs_it_holds_a_lease_on(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    holder = FakeAgent(server, queue=queue)
    other = FakeAgent(server, queue=queue)
    lease = holder.claim_one()
    with pytest.raises(errors.Forbidden):
        other.client.heartbeat(job.id, lease_token=lease.lease_token)
    with pytest.raises(errors.Forbidden):
        other.client.claim(holder.agent.id, capacity=1, wait_s=0)
    with pytest.raises(errors.LeaseLost):
        holder.client.heartbeat(job.id, lease_token="not-the-token")
    done = CompleteRequest(lease_token=lease.lease_token, status=JobStatus.succeeded, exit_code=0)
    first = holder.client.complete(job.id, done)
    assert holder.client.complete(job.id, done) == first  # the same token twice: same answer
    with pytest.raises(errors.LeaseLost):
        holder.client.complete(
            job.id, CompleteRequest(lease_token="stale", status=JobStatus.failed, exit_code=1)
        )
    assert submitter.get_job(job.id).status == JobStatus.succeeded


def test_logs_sent_by_the_agent_are_read_back_and_follow_ends_with_the_job(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    agent.log(lease, "loading data", "fitting\n")
    assert viewer.job_logs(job.id) == "loading data\nfitting\n"
    chunks: list[str] = []
    ended: list[float] = []

    def follow() -> None:
        for chunk in viewer.follow_logs(job.id):
            chunks.append(chunk)
        ended.append(time.monotonic())

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    deadline = time.monotonic() + 5
    while "".join(chunks) != "loading data\nfitting\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "".join(chunks) == "loading data\nfitting\n"  # what was there, streamed at once
    agent.log(lease, "r2 = 0.9")
    deadline = time.monotonic() + 5
    while "r2 = 0.9" not in "".join(chunks) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "".join(chunks).endswith("r2 = 0.9\n")  # a live line, streamed as it came
    assert not ended, "follow ended while the job still ran"
    completed = time.monotonic()
    agent.complete(lease, metrics={"r2": 0.9})
    thread.join(10)
    assert ended and ended[0] - completed < 3.0
    assert "".join(chunks) == "loading data\nfitting\nr2 = 0.9\n"
    with pytest.raises(errors.LeaseLost):  # no logs after the end
        agent.log(lease, "too late")


def test_follow_on_a_finished_job_returns_its_log_and_ends(
    submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    submitter.cancel_job(job.id)
    started = time.monotonic()
    assert "".join(viewer.follow_logs(job.id)) == ""
    assert time.monotonic() - started < 3.0


def test_metrics_expose_the_hq_series(
    server: LiveServer, submitter: HQClient, script: str, queue: str
) -> None:
    agent = FakeAgent(server, queue=queue)
    submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    agent.complete(agent.claim_one(), metrics={"x": 1.0})
    submitter.submit_job(script=script, params={"n": 2}, queue=queue)
    submitter.submit_job(script=script, params={"n": 3}, queue=queue)
    response = httpx.get(
        f"{server.url}/metrics",
        timeout=30,
        headers={"Authorization": f"Bearer {server.token('viewer')}"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert f'hq_jobs{{queue="{queue}",status="queued"}} 2.0' in text
    assert 'hq_agents{status="active"}' in text
    for series in (
        "hq_claim_latency_seconds_bucket",
        "hq_claim_latency_seconds_count",
        "hq_jobs_claimed_total",
        'hq_jobs_completed_total{status="succeeded"}',
        'hq_job_duration_seconds_count{status="succeeded"}',
    ):
        assert series in text, series


def test_health_reports_database_and_storage(server: LiveServer) -> None:
    health = HQClient(server.url).health()
    assert (health.status, health.database, health.storage) == ("ok", "ok", "ok")
    assert health.version and health.time.tzinfo is not None
    assert abs((datetime.now(UTC) - health.time).total_seconds()) < 60


def test_concurrent_submissions_with_one_idempotency_key_all_get_the_first_job(
    server: LiveServer, viewer: HQClient, script: str, queue: str
) -> None:
    token = server.token("submitter")
    key = unique_name("race")
    body = {"script": script, "params": {"n": 6}, "queue": queue}
    start = threading.Barrier(10)
    answers: list[httpx.Response] = []

    def submit() -> None:
        with httpx.Client(timeout=30) as http:
            start.wait()
            answers.append(
                http.post(
                    f"{server.url}/api/v1/jobs",
                    json=body,
                    headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
                )
            )

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.status_code for a in answers) == [200] * 9 + [201], [a.text for a in answers]
    assert len({a.json()["id"] for a in answers}) == 1
    assert len(viewer.list_jobs(script=script).items) == 1


def test_logs_come_back_whole_past_one_page(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    job = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    for batch in range(3):
        agent.log(lease, *(f"line {batch * 5000 + i}" for i in range(5000)))
    lines = viewer.job_logs(job.id).splitlines()
    assert lines == [f"line {i}" for i in range(15000)]
    agent.complete(lease)
    followed = "".join(viewer.follow_logs(job.id)).splitlines()
    assert followed == lines


def test_a_drained_agent_claims_nothing_more_and_lists_as_draining(
    server: LiveServer, submitter: HQClient, viewer: HQClient, script: str, queue: str
) -> None:
    agent = FakeAgent(server, queue=queue)
    first = submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    lease = agent.claim_one()
    assert lease.job_id == first.id
    waiting = submitter.submit_job(script=script, params={"n": 2}, queue=queue)
    drained = server.client("admin").drain_agent(agent.agent.id)
    assert drained.drain_requested and drained.status == "draining" and drained.running == 1
    answer = agent.client.claim(agent.agent.id, capacity=1, wait_s=0)
    assert answer.drain is True and answer.leases == []
    listed = {a.id: a for a in viewer.list_agents()}[agent.agent.id]
    assert listed.status == "draining"
    agent.complete(lease)  # what runs may finish
    assert viewer.get_job(first.id).status == JobStatus.succeeded
    assert viewer.get_job(waiting.id).status == JobStatus.queued
    with pytest.raises(errors.NotFound):
        server.client("admin").drain_agent("00000000-0000-4000-8000-00000000dead")
