"""Webhooks end to end: a real receiver on loopback, a live HQ server on both databases, jobs
and sweeps ended through the agent protocol (no Docker), signatures checked with the secret."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import pytest

from hq import errors
from hq.client import HQClient
from hq.schemas.common import JobStatus
from hq.schemas.webhooks import DeliveryRead, WebhookCreated
from tests.fixtures.api import (
    FakeAgent,
    call,
    count_rows,
    module_server,
    problem,
    publish_fake,
    unique_name,
    unique_queue,
)
from tests.fixtures.db import DB_KINDS, create_pg_database, drop_pg_database
from tests.fixtures.server import ADMIN_TOKEN, LiveServer, free_port
from tests.fixtures.webhooks import WAIT_S, Received, Receiver, serve, verify


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    with serve() as rec:
        yield rec


@pytest.fixture(scope="module")
def decoy() -> Iterator[Receiver]:
    """A receiver whose address is not listed, only the name ``localhost`` on its port."""
    with serve() as rec:
        yield rec


@pytest.fixture(scope="module")
def unlisted_port() -> int:
    return free_port()


@pytest.fixture(scope="module", params=DB_KINDS)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    receiver: Receiver,
    decoy: Receiver,
) -> Iterator[LiveServer]:
    env = {
        # The receiver by address; the decoy by the name "localhost" only, so its loopback
        # address is refused at send time (a name is allowed only to public addresses).
        "HQ_WEBHOOK_ALLOW": f"127.0.0.1:{receiver.port}, localhost:{decoy.port}",
        "HQ_WEBHOOK_BACKOFF_SECONDS": "0.2",
        "HQ_WEBHOOK_POLL_SECONDS": "0.1",
        "HQ_WEBHOOK_MAX_ATTEMPTS": "3",
    }
    with module_server(tmp_path_factory, db=request.param, env=env) as live:
        yield live


@pytest.fixture(scope="module")
def submitter(server: LiveServer) -> HQClient:
    return server.client("submitter")


def end_job(server: LiveServer, client: HQClient, script: str, status: JobStatus) -> str:
    """Submit a job of ``script`` and end it with ``status`` through the agent protocol."""
    queue = unique_queue()
    job = client.submit_job(script=script, params={"n": 1}, queue=queue, reuse=False)
    agent = FakeAgent(server, queue=queue)
    lease = agent.claim_one()
    assert lease.job_id == job.id
    agent.complete(lease, status=status, exit_code=0 if status is JobStatus.succeeded else 3)
    return job.id


def hook(
    client: HQClient, receiver: Receiver, events: list[str], **kw: Any
) -> tuple[WebhookCreated, str]:
    path = "/" + unique_name("hook")
    return client.create_webhook(receiver.url(path), events=events, **kw), path


def deliveries(client: HQClient, webhook_id: str) -> list[DeliveryRead]:
    return client.list_deliveries(webhook_id).items


def settled(client: HQClient, webhook_id: str, n: int = 1) -> list[DeliveryRead]:
    """The webhook's deliveries once there are ``n`` and none is waiting for a try (a try is
    recorded just after its answer: the receiver sees it first)."""
    deadline = time.monotonic() + WAIT_S * 2
    while True:
        found = deliveries(client, webhook_id)
        if len(found) >= n and all(d.status != "pending" for d in found):
            return found
        assert time.monotonic() < deadline, found
        time.sleep(0.05)


def test_each_job_end_is_posted_signed_with_the_webhook_secret(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    created, path = hook(submitter, receiver, ["job"], script=script)
    assert created.secret.startswith("whsec_") and created.events == ["job"]
    ok = end_job(server, submitter, script, JobStatus.succeeded)
    bad = end_job(server, submitter, script, JobStatus.failed)
    got = receiver.wait_for(path, 2)
    bodies = {b["id"]: b for b in (verify(r, created.secret) for r in got)}
    assert set(bodies) == {ok, bad}
    assert bodies[ok]["status"] == "succeeded" and bodies[bad]["status"] == "failed"
    assert bodies[bad]["failure_reason"] and bodies[ok]["failure_reason"] is None
    assert bodies[ok]["script"] == script and bodies[ok]["kind"] == "job"
    assert bodies[ok]["links"]["job"] == f"{server.url}/api/v1/jobs/{ok}"
    assert bodies[ok]["finished_at"] and bodies[ok]["created_at"]
    for r in got:
        assert r.headers["X-HQ-Event"] == "job.ended"
        assert r.headers["Content-Type"] == "application/json"
    recorded = settled(submitter, created.id, 2)
    assert {d.subject_id for d in recorded} == {ok, bad}
    assert {r.headers["X-HQ-Delivery"] for r in got} == {d.id for d in recorded}
    for d in recorded:
        assert d.status == "delivered" and d.attempts == 1 and d.last_status_code == 200
        assert [t.status_code for t in d.tries] == [200] and d.tries[0].response == "ok"
    # A tampered body does not verify with the secret.
    forged = Received(path, got[0].headers, got[0].body + b" ")
    with pytest.raises(AssertionError):
        verify(forged, created.secret)
    with pytest.raises(AssertionError):
        verify(got[0], "whsec_not-the-secret")


def test_a_receiver_answering_500_twice_gets_the_third_try_and_every_try_is_recorded(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    created, path = hook(submitter, receiver, ["job"], script=script)
    receiver.fail[path] = 2
    job_id = end_job(server, submitter, script, JobStatus.succeeded)
    got = receiver.wait_for(path, 3)
    assert len({r.headers["X-HQ-Delivery"] for r in got}) == 1  # one delivery, three tries
    assert len({r.body for r in got}) == 1  # the same bytes every time
    for r in got:
        assert verify(r, created.secret)["id"] == job_id
    [d] = settled(submitter, created.id)
    assert d.status == "delivered" and d.attempts == 3 and d.next_attempt_at is None
    assert [t.status_code for t in d.tries] == [500, 500, 200]
    assert [t.attempt for t in d.tries] == [1, 2, 3]
    assert "boom" in d.tries[0].response and all(t.duration_ms >= 0 for t in d.tries)
    time.sleep(0.5)  # several worker rounds: a delivered delivery is not sent again
    assert len(receiver.on(path)) == 3
    scraped = call(server, server.token("viewer"), "GET", "/metrics").text
    counted = {
        outcome: float(n)
        for outcome, n in re.findall(r'hq_webhook_tries_total\{outcome="(\w+)"\} (\S+)', scraped)
    }
    assert counted.get("pending", 0) >= 2 and counted.get("delivered", 0) >= 1


def test_failures_only_posts_failed_and_timed_out_ends_only(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    created, path = hook(submitter, receiver, ["job"], script=script, failures_only=True)
    end_job(server, submitter, script, JobStatus.succeeded)
    cancelled = submitter.submit_job(script=script, params={"n": 1}, queue=unique_queue())
    submitter.cancel_job(cancelled.id)
    failed = end_job(server, submitter, script, JobStatus.failed)
    # Deliveries are written with each end: only the failure made one.
    assert [d.subject_id for d in deliveries(submitter, created.id)] == [failed]
    assert verify(receiver.wait_for(path, 1)[0], created.secret)["status"] == "failed"


def test_a_sweep_end_is_posted_once_when_its_last_job_ends_with_its_counts(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    created, path = hook(submitter, receiver, ["sweep"], script=script)
    queue = unique_queue()
    sweep = submitter.submit_sweep(script=script, grid={"n": [1, 2, 3]}, queue=queue, reuse=False)
    agent = FakeAgent(server, queue=queue)
    leases = [agent.claim_one() for _ in range(3)]
    agent.complete(leases[0])
    agent.complete(leases[1], status=JobStatus.failed, exit_code=2)
    time.sleep(0.5)  # several worker rounds: two of three jobs ended is not the sweep's end
    assert receiver.on(path) == [] and deliveries(submitter, created.id) == []
    agent.complete(leases[2])
    body = verify(receiver.wait_for(path, 1)[0], created.secret)
    assert body["id"] == sweep.id and body["kind"] == "sweep" and body["event"] == "sweep.ended"
    assert body["status"] == "failed" and body["total"] == 3
    assert body["counts"] == {"succeeded": 2, "failed": 1}
    assert body["links"]["results"] == f"{server.url}/api/v1/sweeps/{sweep.id}/results"
    time.sleep(0.5)
    assert len(receiver.on(path)) == 1 and len(deliveries(submitter, created.id)) == 1


def test_a_url_outside_the_allow_list_is_refused_at_creation_and_nothing_is_written(
    server: LiveServer, submitter: HQClient, receiver: Receiver, unlisted_port: int
) -> None:
    before = count_rows(server, "webhooks")
    for url in (
        "http://10.0.0.1/hook",  # an internal address, not listed
        f"http://127.0.0.1:{unlisted_port}/hook",  # loopback, but on a port not listed
        f"http://127.0.0.2:{receiver.port}/hook",
        f"http://example.com:{receiver.port}/hook",
    ):
        with pytest.raises(errors.ValidationFailed) as caught:
            submitter.create_webhook(url, events=["job"])
        assert url in caught.value.message and "HQ_WEBHOOK_ALLOW" in caught.value.message
    for url, says in (
        (f"ftp://127.0.0.1:{receiver.port}/x", "http or https"),
        (f"http://user:pw@127.0.0.1:{receiver.port}/x", "no user or password"),
    ):
        with pytest.raises(errors.ValidationFailed, match=says):
            submitter.create_webhook(url, events=["job"])
    token = server.token("submitter")
    answer = call(server, token, "POST", "/api/v1/webhooks", json={"url": "x", "events": []})
    assert problem(answer, 422)["code"] == "validation_failed"
    assert count_rows(server, "webhooks") == before


def test_a_name_resolving_to_an_unlisted_address_is_never_sent_and_fails_after_its_tries(
    server: LiveServer, submitter: HQClient, decoy: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    path = "/" + unique_name("dns")
    url = f"http://localhost:{decoy.port}{path}"
    created = submitter.create_webhook(url, events=["job"], script=script)
    end_job(server, submitter, script, JobStatus.succeeded)
    [d] = settled(submitter, created.id)
    assert d.status == "failed" and d.attempts == 3 and len(d.tries) == 3
    assert all(t.status_code is None and "not allowed" in (t.error or "") for t in d.tries)
    assert "127.0.0.1" in (d.last_error or "") or "::1" in (d.last_error or "")
    assert decoy.requests == []


def test_roles_secrets_are_shown_once_and_submitters_delete_only_their_own(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    created, _ = hook(submitter, receiver, ["job", "sweep", "pipeline"])
    viewer = server.client("viewer")
    with pytest.raises(errors.Forbidden):
        viewer.create_webhook(receiver.url("/v"), events=["job"])
    listed = call(server, server.token("viewer"), "GET", "/api/v1/webhooks").json()
    mine = [w for w in listed if w["id"] == created.id]
    assert mine and all("secret" not in w for w in listed)
    assert created.secret not in json.dumps(listed)
    one = call(server, server.token("viewer"), "GET", f"/api/v1/webhooks/{created.id}").json()
    assert "secret" not in one and one["events"] == ["job", "sweep", "pipeline"]
    other = server.client("submitter", name=unique_name("other"))
    with pytest.raises(errors.Forbidden):
        other.delete_webhook(created.id)
    with pytest.raises(errors.Forbidden):
        viewer.delete_webhook(created.id)
    submitter.delete_webhook(created.id)
    with pytest.raises(errors.NotFound):
        submitter.get_webhook(created.id)
    theirs, _ = hook(other, receiver, ["job"])
    server.client("admin").delete_webhook(theirs.id)
    with pytest.raises(errors.ValidationFailed, match="pipeline"):
        submitter.create_webhook(receiver.url("/p"), events=["pipeline"], script="some-script")


def hq(server: LiveServer, token: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HQ_URL": server.url, "HQ_TOKEN": token}
    return subprocess.run(
        [sys.executable, "-m", "hq", *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_the_cli_creates_lists_shows_deliveries_and_deletes_a_webhook(
    server: LiveServer, receiver: Receiver, unlisted_port: int
) -> None:
    token = server.token("submitter")
    script = publish_fake(server.client("publisher")).script
    path = "/" + unique_name("cli")
    created = hq(
        server, token, "webhook", "create", receiver.url(path),
        "--events", "job,sweep", "--failures-only", "--script", script, "-q",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    webhook_id, secret = created.stdout.split()
    assert secret.startswith("whsec_")
    listed = hq(server, token, "webhook", "list")
    row = next(line for line in listed.stdout.splitlines() if line.startswith(webhook_id))
    assert receiver.url(path) in row and "job,sweep" in row and script in row
    assert secret not in listed.stdout
    job_id = end_job(server, server.client("submitter"), script, JobStatus.failed)
    verify(receiver.wait_for(path, 1)[0], secret)
    settled(server.client("viewer"), webhook_id)
    shown = hq(server, token, "webhook", "deliveries", webhook_id, "--json")
    assert shown.returncode == 0, shown.stderr
    [delivery] = json.loads(shown.stdout)
    assert delivery["subject_id"] == job_id and delivery["tries"][0]["status_code"] == 200
    table = hq(server, token, "webhook", "deliveries", webhook_id)
    assert job_id in table.stdout and "job.ended" in table.stdout
    refused = hq(
        server, token, "webhook", "create", f"http://127.0.0.1:{unlisted_port}/x", "--events", "job"
    )
    assert refused.returncode == 1 and "HQ_WEBHOOK_ALLOW" in refused.stderr
    assert "Traceback" not in refused.stderr
    bad = hq(server, token, "webhook", "create", receiver.url("/x"), "--events", "jobs")
    assert bad.returncode == 2 and "choose from job, sweep, pipeline" in bad.stderr
    deleted = hq(server, token, "webhook", "delete", webhook_id)
    assert deleted.returncode == 0 and webhook_id in deleted.stdout
    gone = hq(server, token, "webhook", "deliveries", webhook_id)
    assert gone.returncode == 1 and "not found" in gone.stderr


@pytest.mark.postgresql
def test_two_replicas_on_one_database_send_each_try_once(
    tmp_path_factory: pytest.TempPathFactory, receiver: Receiver
) -> None:
    """Both replicas' workers look for due deliveries; a claim holds each one, so every try a
    delivery records reached the receiver once, and nothing reached it that was not recorded."""
    name, database_url = create_pg_database()
    replicas: list[LiveServer] = []
    try:
        for _ in range(2):
            home = tmp_path_factory.mktemp("hq-replica")
            port = free_port()
            env = {
                **os.environ,
                "HQ_HOME": str(home),
                "HQ_DATABASE_URL": database_url,
                "HQ_STORAGE_URL": f"file://{home.parent / 'replica-storage'}",
                "HQ_PORT": str(port),
                "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
                "HQ_LOG_LEVEL": "warning",
                "HQ_WEBHOOK_ALLOW": f"127.0.0.1:{receiver.port}",
                "HQ_WEBHOOK_BACKOFF_SECONDS": "0.1",
                "HQ_WEBHOOK_POLL_SECONDS": "0.02",
                "HQ_WEBHOOK_MAX_ATTEMPTS": "10",  # more than the 500s: every delivery lands
            }
            replica = LiveServer(
                url=f"http://127.0.0.1:{port}",
                admin_token=ADMIN_TOKEN,
                home=home,
                database_url=database_url,
                env=env,
                log_path=home / "server.log",
            )
            replica.start()
            replicas.append(replica)
        first = replicas[0]
        script = publish_fake(first.client("publisher")).script
        submitter = first.client("submitter")
        created, path = hook(submitter, receiver, ["job"], script=script)
        receiver.fail[path] = 6  # some deliveries need several tries
        jobs = [end_job(replicas[i % 2], submitter, script, JobStatus.succeeded) for i in range(16)]
        recorded = settled(submitter, created.id, 16)
        assert sorted(d.subject_id for d in recorded) == sorted(jobs)
        assert all(d.status == "delivered" for d in recorded)
        got = receiver.on(path)
        sent: dict[str, int] = {}
        for r in got:
            sent[r.headers["X-HQ-Delivery"]] = sent.get(r.headers["X-HQ-Delivery"], 0) + 1
        assert sent == {d.id: len(d.tries) for d in recorded}
        assert sum(sent.values()) == 16 + 6
    finally:
        for replica in replicas:
            replica.close_clients()
            replica.stop()
        drop_pg_database(name)


def test_a_redirect_is_not_followed_it_is_a_failed_try(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    created, path = hook(submitter, receiver, ["job"], script=script)
    target = "/" + unique_name("elsewhere")
    receiver.redirect[path] = receiver.url(target)
    end_job(server, submitter, script, JobStatus.succeeded)
    [d] = settled(submitter, created.id)
    assert d.status == "failed" and [t.status_code for t in d.tries] == [307, 307, 307]
    assert len(receiver.on(path)) == 3 and receiver.on(target) == []


def test_a_sweep_whose_every_job_is_reused_ends_at_once_and_is_posted(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    script = publish_fake(server.client("publisher")).script
    queue = unique_queue()
    first = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, queue=queue, reuse=False)
    agent = FakeAgent(server, queue=queue)
    for lease in [agent.claim_one(), agent.claim_one()]:
        agent.complete(lease)
    created, path = hook(submitter, receiver, ["sweep"], script=script)
    again = submitter.submit_sweep(script=script, grid={"n": [1, 2]}, queue=queue, reuse=True)
    assert again.finished and again.id != first.id
    body = verify(receiver.wait_for(path, 1)[0], created.secret)
    assert body["id"] == again.id and body["status"] == "succeeded"
    assert body["counts"] == {"succeeded": 2}
    assert [d.subject_id for d in deliveries(submitter, created.id)] == [again.id]


def test_a_pipeline_end_is_posted_with_its_steps_and_a_failure_only_hook_hears_only_failures(
    server: LiveServer, submitter: HQClient, receiver: Receiver
) -> None:
    """Two pipelines of one step each, ended through the agent protocol: the pipeline webhook
    hears both ends (after the step's job), the failures-only one only the failed pipeline."""
    script = publish_fake(server.client("publisher")).script
    every, every_path = hook(submitter, receiver, ["pipeline"])
    failures, failures_path = hook(submitter, receiver, ["pipeline"], failures_only=True)
    ended: dict[str, str] = {}
    for status in (JobStatus.succeeded, JobStatus.failed):
        queue = unique_queue()
        step = {"name": "only", "script": script, "params": {"n": 1}, "queue": queue}
        pipeline = submitter.pipelines.submit(name=unique_name("p"), steps=[step], reuse=False)
        agent = FakeAgent(server, queue=queue)
        lease = agent.claim_one()
        agent.complete(lease, status=status, exit_code=0 if status is JobStatus.succeeded else 3)
        ended[pipeline.id] = status.value
        assert submitter.pipelines.get(pipeline.id).status == status.value
    bodies = {
        b["id"]: b for b in (verify(r, every.secret) for r in receiver.wait_for(every_path, 2))
    }
    assert {pid: b["status"] for pid, b in bodies.items()} == ended
    for pid, body in bodies.items():
        assert body["kind"] == "pipeline" and body["event"] == "pipeline.ended"
        assert [s["name"] for s in body["steps"]] == ["only"]
        assert body["steps"][0]["status"] == ended[pid] and body["steps"][0]["job_id"]
        assert body["links"]["pipeline"] == f"{server.url}/api/v1/pipelines/{pid}"
        assert body["finished_at"]
    [failed] = [verify(r, failures.secret) for r in receiver.wait_for(failures_path, 1)]
    assert failed["status"] == "failed"
    time.sleep(0.5)  # nothing more comes for the succeeded pipeline
    assert len(receiver.on(failures_path)) == 1
