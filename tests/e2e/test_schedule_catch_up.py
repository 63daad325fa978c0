"""Catch-up after downtime, with one server stopped and started again on its database:
``skip`` runs no missed slot, ``once`` runs one for the latest missed slot, then both go on."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import pytest

from hq.client import HQClient
from hq.schemas.schedules import ScheduleRunRead
from tests.fixtures.api import publish_fake, unique_name, unique_queue
from tests.fixtures.db import DB_KINDS
from tests.fixtures.server import LiveServer, ServerFactory

GRACE_S = 2.0  # a slot fired later than this is missed


def _server(server_factory: ServerFactory, db: str) -> LiveServer:
    return server_factory(db=db, env={"HQ_SCHEDULE_GRACE_SECONDS": str(GRACE_S)})


@pytest.fixture
def server(server_factory: ServerFactory) -> LiveServer:
    return _server(server_factory, "sqlite")


def _runs(client: HQClient, schedule_id: str) -> list[ScheduleRunRead]:
    return client.schedule_runs(schedule_id, limit=1000).items[::-1]


def _restart_after(server: LiveServer, at: datetime) -> HQClient:
    """Stop the server, wait until ``at``, start it again on the same database."""
    server.close_clients()
    server.stop()
    time.sleep(max(0.0, (at - datetime.now(UTC)).total_seconds()))
    server.start()
    return server.client()


def _settle(client: HQClient, schedule_id: str, seconds: float = 1.5) -> list[ScheduleRunRead]:
    time.sleep(seconds)  # the firer's first tick after the start has run
    return _runs(client, schedule_id)


@pytest.mark.parametrize("db", DB_KINDS)
@pytest.mark.parametrize("policy", ["skip", "once"])
def test_a_slot_missed_while_down_is_skipped_or_run_once(
    server_factory: ServerFactory, db: str, policy: str
) -> None:
    server = _server(server_factory, db)
    admin = server.client()
    script = publish_fake(admin).script
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
    created = admin.create_schedule(
        name=unique_name(policy),
        kind="job",
        body={"script": script, "params": {"n": 1}, "queue": unique_queue()},
        interval_s=3600,
        start_at=start,
        catch_up=policy,
    )
    assert created.next_at == start
    # Down across the slot and well past its grace: it is missed.
    admin = _restart_after(server, start + timedelta(seconds=GRACE_S + 2))
    runs = _settle(admin, created.id)
    shown = admin.get_schedule(created.id)
    assert shown.next_at == start + timedelta(hours=1)
    if policy == "skip":
        assert runs == [] and shown.skipped == 1
        assert admin.list_jobs(script=script).items == []
    else:
        assert [r.slot_at for r in runs] == [start] and shown.skipped == 0
        assert runs[0].job_id and runs[0].fired_at > start + timedelta(seconds=GRACE_S)


def test_once_runs_only_the_latest_of_many_missed_slots_then_goes_on(server: LiveServer) -> None:
    admin = server.client()
    script = publish_fake(admin).script
    created = admin.create_schedule(
        name=unique_name("once"),
        kind="job",
        body={"script": script, "params": {"n": 1}, "queue": unique_queue()},
        interval_s=2,
        catch_up="once",
    )
    deadline = time.monotonic() + 10
    while not _runs(admin, created.id) and time.monotonic() < deadline:
        time.sleep(0.2)
    before = _runs(admin, created.id)
    assert before, "the schedule never fired before the stop"
    down_until = datetime.now(UTC) + timedelta(seconds=9)  # four slots or more pass
    admin = _restart_after(server, down_until)
    restarted = datetime.now(UTC)
    runs = _settle(admin, created.id, seconds=4.5)
    last_before = max(r.slot_at for r in _runs(admin, created.id) if r.slot_at < down_until)
    after = [r for r in runs if r.slot_at > last_before]
    assert len(after) >= 2, after
    caught_up = after[0]
    missed = round((caught_up.slot_at - last_before).total_seconds() / 2) - 1
    assert missed >= 3, (last_before, caught_up.slot_at)
    assert caught_up.slot_at <= restarted  # the latest slot that had passed, run once
    assert restarted - caught_up.slot_at <= timedelta(seconds=4)
    assert admin.get_schedule(created.id).skipped == missed  # the others are counted, not run
    steps = [(b.slot_at - a.slot_at).total_seconds() for a, b in itertools.pairwise(after)]
    assert steps == [2.0] * len(steps)  # then on, slot by slot
    assert len(admin.list_jobs(script=script, limit=1000).items) == len(runs)
