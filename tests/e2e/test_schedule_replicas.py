"""Two HQ replicas on one PostgreSQL database, each running its schedule firer: a schedule every
2 s fires once per slot (no slot twice, none missed) for 10 slots, and stops when paused."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hq.client import HQClient
from hq.schemas.schedules import ScheduleRunRead
from tests.fixtures.api import count_rows, publish_fake, unique_name, unique_queue
from tests.fixtures.db import create_pg_database, drop_pg_database
from tests.fixtures.server import ADMIN_TOKEN, LiveServer, free_port

pytestmark = pytest.mark.postgresql

SLOTS = 10
INTERVAL_S = 2


def _replica(home: Path, database_url: str, storage: Path) -> LiveServer:
    home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {
        **os.environ,
        "HQ_HOME": str(home),
        "HQ_DATABASE_URL": database_url,
        "HQ_STORAGE_URL": f"file://{storage}",
        "HQ_PORT": str(port),
        "HQ_HOST": "127.0.0.1",
        "HQ_ADMIN_TOKEN": ADMIN_TOKEN,
        "HQ_LOG_LEVEL": "info",  # each fire is logged: which replica fired what
    }
    return LiveServer(
        url=f"http://127.0.0.1:{port}",
        admin_token=ADMIN_TOKEN,
        home=home,
        database_url=database_url,
        env=env,
        log_path=home / "server.log",
    )


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[LiveServer]]:
    name, url = create_pg_database()
    servers = [_replica(tmp_path / f"replica-{i}", url, tmp_path / "storage") for i in range(2)]
    try:
        for server in servers:
            server.start()
        yield servers
    finally:
        for server in servers:
            server.close_clients()
            server.stop()
        drop_pg_database(name)


def _runs(client: HQClient, schedule_id: str) -> list[ScheduleRunRead]:
    return client.schedule_runs(schedule_id, limit=1000).items[::-1]


def _wait_runs(client: HQClient, schedule_id: str, n: int, timeout: float) -> list[ScheduleRunRead]:
    deadline = time.monotonic() + timeout
    runs = _runs(client, schedule_id)
    while len(runs) < n and time.monotonic() < deadline:
        time.sleep(0.25)
        runs = _runs(client, schedule_id)
    return runs


def _assert_one_per_slot(runs: list[ScheduleRunRead]) -> None:
    slots = [r.slot_at for r in runs]
    assert len(set(slots)) == len(slots), "a slot fired twice"
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(slots)]
    assert gaps == [INTERVAL_S] * len(gaps), f"slots missed or out of step: {gaps}"
    assert all(r.error is None and r.job_id for r in runs), runs
    assert len({r.job_id for r in runs}) == len(runs)


@pytest.mark.slow
def test_two_replicas_fire_a_2s_schedule_once_per_slot_and_pause_stops_it(
    replicas: list[LiveServer],
) -> None:
    first, second = replicas
    script = publish_fake(first.client("publisher")).script
    owner = second.client("submitter")
    reader = first.client("viewer")
    body = {"script": script, "params": {"n": 1}, "queue": unique_queue()}
    created = owner.create_schedule(
        name=unique_name("replicas"), kind="job", body=body, interval_s=INTERVAL_S
    )

    runs = _wait_runs(reader, created.id, SLOTS, timeout=SLOTS * INTERVAL_S + 15)
    assert len(runs) >= SLOTS, f"only {len(runs)} runs"
    assert runs[0].slot_at == created.next_at  # none missed from the very first
    _assert_one_per_slot(runs)
    for run in runs[:SLOTS]:  # each run's job exists, with the schedule's body
        assert run.job_id is not None
        job = reader.get_job(run.job_id)
        assert job.script == script and job.params["n"] == 1

    owner.pause_schedule(created.id)  # through the other replica than the one that reads
    paused_runs = len(_runs(reader, created.id))
    jobs = reader.list_jobs(script=script, limit=1000).items
    assert len(jobs) == paused_runs  # one job per run: no duplicate submission anywhere
    time.sleep(3 * INTERVAL_S)
    assert len(_runs(reader, created.id)) == paused_runs
    assert count_rows(first, "schedule_runs") == paused_runs
    assert len(reader.list_jobs(script=script, limit=1000).items) == paused_runs

    resumed = owner.resume_schedule(created.id)
    after = _wait_runs(reader, created.id, paused_runs + 3, timeout=3 * INTERVAL_S + 15)
    assert len(after) >= paused_runs + 3
    assert resumed.next_at is not None and after[paused_runs].slot_at == resumed.next_at
    _assert_one_per_slot(after[paused_runs:])
    owner.pause_schedule(created.id)
    total = len(_runs(reader, created.id))
    fired = [r.log_path.read_text().count(f"schedule {created.id}: fired slot") for r in replicas]
    assert sum(fired) == total, fired  # each slot fired by exactly one replica
    late = sorted(
        (r.fired_at - r.slot_at).total_seconds() * 1000 for r in _runs(reader, created.id)
    )
    print(f"slots fired by each replica: {fired}; lateness ms p50 {late[len(late) // 2]:.0f} "
          f"max {late[-1]:.0f}")  # fmt: skip
