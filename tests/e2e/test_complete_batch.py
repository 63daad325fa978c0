"""POST /api/v1/jobs/complete: several results in one request, each accepted or refused alone,
with the same fencing as the single complete (stale token, another agent's lease, replay)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from hq import errors
from hq.client import HQClient
from hq.schemas.agents import CompleteItem, CompleteRequest
from hq.schemas.common import JobStatus
from hq.schemas.jobs import LogLine
from hq.schemas.results import Results
from tests.fixtures.api import FakeAgent, module_server, publish_fake, unique_queue
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


def item(
    lease_job: str, token: str, status: JobStatus = JobStatus.succeeded, **fields: Any
) -> CompleteItem:
    return CompleteItem(job_id=lease_job, lease_token=token, status=status, exit_code=0, **fields)


def test_a_batch_completes_every_leased_job_with_its_own_status_and_metrics(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    queue = unique_queue()
    jobs = [submitter.submit_job(script=script, params={"n": n}, queue=queue) for n in range(1, 6)]
    agent = FakeAgent(server, queue=queue)
    leases = agent.client.claim(agent.agent.id, capacity=5, wait_s=5).leases
    assert len(leases) == 5
    items = [
        item(lease.job_id, lease.lease_token, results=Results(metrics={"n": lease.params["n"]}))
        for lease in leases[:4]
    ]
    items.append(item(leases[4].job_id, leases[4].lease_token, JobStatus.failed))
    answer = agent.client.complete_many(items)
    assert [r.job_id for r in answer.results] == [lease.job_id for lease in leases]
    assert all(r.accepted for r in answer.results)
    assert [r.status for r in answer.results] == [JobStatus.succeeded] * 4 + [JobStatus.failed]
    for lease in leases[:4]:
        assert submitter.get_job(lease.job_id).metrics == {"n": lease.params["n"]}
    failed = submitter.get_job(leases[4].job_id)
    assert failed.status == JobStatus.failed and failed.failure_reason == "exit code 0"
    assert {j.id for j in jobs} == {lease.job_id for lease in leases}


def test_a_stale_or_foreign_item_is_refused_alone_and_a_replay_gets_the_first_answer(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    queue = unique_queue()
    for n in (1, 2, 3):
        submitter.submit_job(script=script, params={"n": n}, queue=queue)
    holder = FakeAgent(server, queue=queue)
    other = FakeAgent(server, queue=queue)
    mine = holder.client.claim(holder.agent.id, capacity=2, wait_s=5).leases
    theirs = other.client.claim(other.agent.id, capacity=1, wait_s=5).leases
    assert len(mine) == 2 and len(theirs) == 1
    answer = holder.client.complete_many(
        [
            item(mine[0].job_id, mine[0].lease_token),
            item(mine[1].job_id, "stale-token"),
            item(theirs[0].job_id, theirs[0].lease_token),
            item("no-such-job", "x"),
        ]
    )
    codes = [(r.accepted, r.code) for r in answer.results]
    assert codes == [
        (True, None),
        (False, errors.LeaseLost.code),
        (False, errors.Forbidden.code),
        (False, errors.NotFound.code),
    ]
    assert submitter.get_job(mine[1].job_id).status == JobStatus.running
    assert submitter.get_job(theirs[0].job_id).status == JobStatus.running
    again = holder.client.complete_many(
        [item(mine[0].job_id, mine[0].lease_token), item(mine[1].job_id, mine[1].lease_token)]
    )
    assert [(r.accepted, r.status) for r in again.results] == [
        (True, JobStatus.succeeded),
        (True, JobStatus.succeeded),
    ]
    with pytest.raises(errors.LeaseLost):  # the single complete agrees: that lease is used up
        holder.client.complete(
            mine[1].job_id,
            CompleteRequest(lease_token="stale-token", status=JobStatus.failed, exit_code=1),
        )


def test_a_batch_refuses_a_non_final_status_and_an_empty_list(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    queue = unique_queue()
    submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    answer = agent.client.complete_many([item(lease.job_id, lease.lease_token, JobStatus.running)])
    assert answer.results[0].code == errors.ValidationFailed.code
    assert submitter.get_job(lease.job_id).status == JobStatus.running
    with pytest.raises(errors.ValidationFailed):
        agent.client._json("POST", "/api/v1/jobs/complete", type(answer), json={"items": []})


def test_complete_and_claim_settles_the_batch_then_leases_the_next(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    queue = unique_queue()
    jobs = [submitter.submit_job(script=script, params={"n": n}, queue=queue) for n in range(1, 5)]
    agent = FakeAgent(server, queue=queue)
    first = agent.client.complete_and_claim(agent.agent.id, [], capacity=2, wait_s=5)
    assert first.results == [] and len(first.leases) == 2
    items = [item(first.leases[0].job_id, first.leases[0].lease_token)]
    items.append(item(first.leases[1].job_id, "stale-token"))  # fenced: refused alone
    second = agent.client.complete_and_claim(agent.agent.id, items, capacity=2, wait_s=5)
    assert [(r.accepted, r.code) for r in second.results] == [
        (True, None),
        (False, errors.LeaseLost.code),
    ]
    assert len(second.leases) == 2
    assert {lease.job_id for lease in first.leases + second.leases} == {j.id for j in jobs}
    assert submitter.get_job(first.leases[0].job_id).status == JobStatus.succeeded
    assert submitter.get_job(first.leases[1].job_id).status == JobStatus.running
    # The same request again (its answer lost, say): the results get their first answers, and
    # with nothing queued the claim waits and comes back empty.
    again = agent.client.complete_and_claim(agent.agent.id, items[:1], capacity=2, wait_s=0)
    assert [(r.accepted, r.status) for r in again.results] == [(True, JobStatus.succeeded)]
    assert again.leases == []


def test_complete_and_claim_for_another_agent_is_refused_after_nothing_is_claimed(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    queue = unique_queue()
    submitter.submit_job(script=script, params={"n": 1}, queue=queue)
    mine = FakeAgent(server, queue=queue)
    other = FakeAgent(server, queue=queue)
    with pytest.raises(errors.HQError):
        mine.client.complete_and_claim(other.agent.id, [], capacity=1, wait_s=0)
    assert len(mine.client.claim(mine.agent.id, capacity=1, wait_s=5).leases) == 1


def test_a_refused_claim_after_results_still_commits_the_results(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    """The claim of complete-and-claim runs in the results' transaction; when the claim itself
    is refused (here: another agent's id), the results are committed all the same and the
    refusal is the answer, as a complete then a claim would have it."""
    queue = unique_queue()
    jobs = [submitter.submit_job(script=script, params={"n": n}, queue=queue) for n in (1, 2)]
    mine = FakeAgent(server, queue=queue)
    other = FakeAgent(server, queue=queue)
    [lease] = mine.client.claim(mine.agent.id, capacity=1, wait_s=5).leases
    with pytest.raises(errors.Forbidden):
        mine.client.complete_and_claim(
            other.agent.id, [item(lease.job_id, lease.lease_token)], capacity=1, wait_s=0
        )
    assert submitter.get_job(lease.job_id).status == JobStatus.succeeded
    [rest] = [job for job in jobs if job.id != lease.job_id]
    assert submitter.get_job(rest.id).status == JobStatus.queued  # nothing leased to anyone


def test_the_last_log_lines_go_with_complete_once_and_only_for_the_lease_holder(
    server: LiveServer, submitter: HQClient, script: str
) -> None:
    """An agent sends a job's last lines with its result (one call fewer at the end): they are
    stored after the lines sent before, a replay of the complete does not store them twice, and
    a refused item's lines are not stored."""
    queue = unique_queue()
    jobs = [submitter.submit_job(script=script, params={"n": n}, queue=queue) for n in (1, 2)]
    agent = FakeAgent(server, queue=queue)
    first, second = agent.client.claim(agent.agent.id, capacity=2, wait_s=5).leases
    agent.log(first, "started")
    now = datetime.now(UTC)
    last = [LogLine(at=now, text="score 0.9"), LogLine(at=now, stream="agent", text="job ended")]
    request = CompleteRequest(
        lease_token=first.lease_token, status=JobStatus.succeeded, exit_code=0, logs=last
    )
    assert agent.client.complete(first.job_id, request).accepted
    assert agent.client.complete(first.job_id, request).accepted  # a replay: the first answer
    assert submitter.job_logs(first.job_id) == "started\nscore 0.9\njob ended\n"
    stale = item(second.job_id, "not-the-token", logs=[LogLine(at=now, text="from nobody")])
    [refused] = agent.client.complete_many([stale]).results
    assert not refused.accepted
    assert submitter.job_logs(second.job_id) == ""
    assert {j.id for j in jobs} == {first.job_id, second.job_id}
