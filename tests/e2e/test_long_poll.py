"""An idle long-poll claim returns within milliseconds of a submission."""

from __future__ import annotations

import contextlib
import statistics
import threading
import time
from typing import Any

import httpx
import pytest

from hq import errors
from hq.client import HQClient
from hq.schemas.agents import AgentCreate
from tests.fixtures.server import LiveServer

NOOP_MANIFEST = {
    "name": "noop",
    "command": ["true"],
    "params": {"type": "object", "properties": {"n": {"type": "integer"}}},
}


def publish_noop(server: LiveServer) -> None:
    server.client("publisher").publish_script_version(
        name="noop", image="noop:1", digest="sha256:" + "1" * 64, manifest=NOOP_MANIFEST
    )


def test_idle_claim_wakes_within_milliseconds_of_a_submission(live_server: LiveServer) -> None:
    publish_noop(live_server)
    agent_client = live_server.client("agent")
    agent = agent_client.register_agent(AgentCreate(name="idle", capacity=1))
    submitter: HQClient = live_server.client("submitter")
    latencies = []
    for n in range(20):
        got: dict[str, float] = {}

        def wait_for_work(got: dict[str, float] = got) -> None:
            response = agent_client.claim(agent.id, capacity=1, wait_s=10)
            got["at"] = time.perf_counter()
            got["n"] = len(response.leases)

        waiter = threading.Thread(target=wait_for_work)
        waiter.start()
        time.sleep(0.05)  # the claim is parked in its long poll
        submitter.submit_job(script="noop", params={"n": n})
        submitted = time.perf_counter()
        waiter.join(timeout=10)
        assert got.get("n") == 1
        latencies.append(got["at"] - submitted)
    # Woken by the notification, not by the 10 s poll timeout.
    assert max(latencies) < 1.0
    assert statistics.median(latencies) < 0.1


def park(client: HQClient, agent_id: str, got: dict[str, Any], wait_s: float) -> threading.Thread:
    """A long-poll claim in a thread; ``got`` receives its job ids and when it returned."""

    def claim() -> None:
        leases = client.claim(agent_id, capacity=1, wait_s=wait_s).leases
        got["at"] = time.perf_counter()
        got["jobs"] = [lease.job_id for lease in leases]

    thread = threading.Thread(target=claim)
    thread.start()
    time.sleep(0.2)  # parked in its long poll, behind the ones parked before
    return thread


def test_a_wake_up_the_oldest_waiter_cannot_use_passes_to_the_next(
    live_server: LiveServer,
) -> None:
    """One job wakes one waiter, the oldest; it lacks the job's label, so it passes the wake-up
    on, and the next waiter claims at once rather than at the end of its long poll."""
    publish_noop(live_server)
    client = live_server.client("agent")
    plain = client.register_agent(AgentCreate(name="plain", capacity=1))
    special = client.register_agent(AgentCreate(name="special", capacity=1, labels=["special"]))
    got_plain: dict[str, Any] = {}
    got_special: dict[str, Any] = {}
    threads = [park(client, plain.id, got_plain, 3), park(client, special.id, got_special, 20)]
    job = live_server.client("submitter").submit_job(
        script="noop", params={"n": 1}, labels=["special"]
    )
    submitted = time.perf_counter()
    for thread in threads:
        thread.join(timeout=25)
    assert got_special["jobs"] == [job.id]
    assert got_special["at"] - submitted < 1.0
    assert got_plain["jobs"] == []


def test_a_wake_up_for_an_agent_that_went_away_passes_to_the_next(
    live_server: LiveServer,
) -> None:
    publish_noop(live_server)
    token = live_server.token("agent")
    client = HQClient(live_server.url, token)
    gone = client.register_agent(AgentCreate(name="gone", capacity=1))
    live = client.register_agent(AgentCreate(name="live", capacity=1))
    with pytest.raises(httpx.ReadTimeout):  # parked first, then its agent gave up on it
        httpx.post(
            f"{live_server.url}/api/v1/agents/{gone.id}/claim",
            json={"capacity": 1, "wait_s": 30},
            headers={"Authorization": f"Bearer {token}"},
            timeout=0.3,
        )
    got: dict[str, Any] = {}
    thread = park(client, live.id, got, 20)
    job = live_server.client("submitter").submit_job(script="noop", params={"n": 1})
    submitted = time.perf_counter()
    thread.join(timeout=25)
    client.close()
    assert got["jobs"] == [job.id]
    assert got["at"] - submitted < 1.0


def test_a_claim_whose_agent_went_away_hands_out_nothing(live_server: LiveServer) -> None:
    publish_noop(live_server)
    token = live_server.token("agent")
    with HQClient(live_server.url, token) as agent_client:
        agent = agent_client.register_agent(AgentCreate(name="gone", capacity=1))
    # An agent that gives up on its long poll after 0.3 s (it died, or its network did).
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{live_server.url}/api/v1/agents/{agent.id}/claim",
            json={"capacity": 1, "wait_s": 30},
            headers={"Authorization": f"Bearer {token}"},
            timeout=0.3,
        )
    job = live_server.client("submitter").submit_job(script="noop", params={"n": 1})
    time.sleep(1.0)
    assert live_server.client("viewer").get_job(job.id).status == "queued"


def test_server_stops_promptly_with_a_long_poll_in_flight(sqlite_server: LiveServer) -> None:
    agent_client = sqlite_server.client("agent")
    agent = agent_client.register_agent(AgentCreate(name="parked", capacity=1))

    def park() -> None:
        with contextlib.suppress(errors.HQError):  # the server goes away under it
            agent_client.claim(agent.id, capacity=1, wait_s=60)

    waiter = threading.Thread(target=park)
    waiter.start()
    time.sleep(0.3)
    started = time.monotonic()
    sqlite_server.stop()
    # Parked long polls are answered at once, not cancelled after uvicorn's grace period.
    assert time.monotonic() - started < 1.5
    assert "graceful shutdown exceeded" not in sqlite_server.log_path.read_text()
    waiter.join(timeout=10)


def test_a_drain_requested_while_a_claim_waits_hands_out_nothing(live_server: LiveServer) -> None:
    publish_noop(live_server)
    agent_client = live_server.client("agent")
    agent = agent_client.register_agent(AgentCreate(name="draining", capacity=1))
    got: dict[str, int] = {}

    def park() -> None:
        got["leases"] = len(agent_client.claim(agent.id, capacity=1, wait_s=3).leases)

    waiter = threading.Thread(target=park)
    waiter.start()
    time.sleep(0.3)
    live_server.client("admin").drain_agent(agent.id)
    job = live_server.client("submitter").submit_job(script="noop", params={"n": 2})
    waiter.join(timeout=10)
    assert got == {"leases": 0}
    assert live_server.client("viewer").get_job(job.id).status == "queued"
    assert agent_client.claim(agent.id, capacity=1, wait_s=0).drain is True
