"""A database outage longer than a lease is survived without waste: while PostgreSQL is down
HQ answers 503 with Retry-After (never 500), the agent keeps its jobs running and holds a result
that finished meanwhile, and once PostgreSQL is back no job is requeued or lost for the gap.

PostgreSQL here is a cluster of the test's own (``pg_cluster``), stopped and started by the test.
"""

from __future__ import annotations

import logging
import time
from collections import Counter

import httpx

from tests.fixtures.agent import AgentFactory, publish_inline, wait_status
from tests.fixtures.docker import BaseImage
from tests.fixtures.pgcluster import PgCluster
from tests.fixtures.server import ServerFactory

log = logging.getLogger(__name__)

LEASE_S = 4.0
OUTAGE_S = 12.0  # three leases
SLEEPER = "import sys, time\nprint('working', flush=True)\ntime.sleep(float(sys.argv[1]))"


def test_a_database_outage_longer_than_a_lease_requeues_nothing(
    server_factory: ServerFactory,
    hq_agents: AgentFactory,
    base_image: BaseImage,
    pg_cluster: PgCluster,
) -> None:
    server = server_factory(
        env={
            "HQ_DATABASE_URL": pg_cluster.url,
            "HQ_LEASE_TTL_SECONDS": str(LEASE_S),
            "HQ_OUTAGE_GRACE_SECONDS": "20",
        }
    )
    hq_agents(server, capacity=2, env={"HQ_RETRY_MAX_S": "2", "HQ_HEARTBEAT_INTERVAL_S": "1"})
    publish_inline(
        server,
        base_image,
        name="sleeper",
        code=SLEEPER,
        args=["{params.s}"],
        params={"type": "object", "properties": {"s": {"type": "number"}}},
    )
    client = server.client("submitter")
    # One job ends during the outage (its result is held), one runs across it.
    short = client.submit_job(script="sleeper", params={"s": 6}, max_attempts=1)
    long = client.submit_job(script="sleeper", params={"s": OUTAGE_S + 8}, max_attempts=1)
    for job in (short, long):
        wait_status(client, job.id, {"running"}, timeout_s=60)
    time.sleep(1.0)

    pg_cluster.stop()
    down_at = time.monotonic()
    answers: Counter[str] = Counter()
    headers = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=10) as http:
        while time.monotonic() - down_at < OUTAGE_S:
            for path in (f"/api/v1/jobs/{long.id}", "/api/v1/jobs", "/api/v1/agents"):
                response = http.get(path)
                answers[str(response.status_code)] += 1
                if response.status_code == 503:
                    assert response.headers.get("Retry-After"), response.headers
                    assert response.json()["code"] == "unavailable"
            time.sleep(0.2)
    pg_cluster.start()
    up_at = time.monotonic()

    done = {
        j.id: wait_status(
            client, j.id, {"succeeded", "failed", "timed_out", "cancelled"}, timeout_s=90
        )
        for j in (short, long)
    }
    held_result_s = None
    for job in done.values():
        assert job.status == "succeeded", job
        assert job.attempts == 1, job.events
        assert [e.kind for e in job.events] == ["queued", "started", "succeeded"], job.events
    short_done = done[short.id]
    assert short_done.finished_at is not None
    held_result_s = time.monotonic() - up_at
    log.warning(
        "outage %.1f s (lease %.1f s): answers %s; both jobs accepted within %.1f s of the "
        "database's return, attempts 1 each",
        up_at - down_at,
        LEASE_S,
        dict(answers),
        held_result_s,
    )
    assert set(answers) == {"503"}, answers
