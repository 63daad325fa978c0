"""The schedules page's rows and run links, from API models."""

from __future__ import annotations

from datetime import UTC, datetime

from dash_app.logic.schedules import run_link, schedule_rows
from hq.schemas.schedules import ScheduleRead, ScheduleRunRead

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _run(**ids: str) -> ScheduleRunRead:
    return ScheduleRunRead(schedule_id="s1", slot_at=AT, fired_at=AT, **ids)


def _schedule(*, paused: bool, last_run: ScheduleRunRead | None) -> ScheduleRead:
    return ScheduleRead(
        id="s1", name="nightly", kind="job", body={}, cron="30 9 * * *", timezone="Europe/Paris",
        catch_up="skip", paused=paused, next_at=AT, created_at=AT, last_run=last_run,
    )  # fmt: skip


def test_a_row_says_when_it_fires_next_and_what_its_last_run_made() -> None:
    [row] = schedule_rows([_schedule(paused=False, last_run=_run(job_id="0123456789abcdef"))])
    assert row["when"] == "30 9 * * * (Europe/Paris)"
    assert row["next_at"] == "2026-03-01 09:30:00" and row["paused"] == ""
    assert row["last_run"] == "2026-03-01 09:30:00" and row["last_result"] == "job 01234567"
    [paused] = schedule_rows([_schedule(paused=True, last_run=_run(error="no such script"))])
    assert paused["next_at"] == "" and paused["paused"] == "paused"
    assert paused["last_result"] == "error: no such script"


def test_a_run_links_to_its_job_or_its_sweep() -> None:
    assert run_link(_run(job_id="j1")) == ("job j1", "/jobs/j1")
    assert run_link(_run(sweep_id="w1")) == ("sweep w1", "/compare?sweep=w1")
    assert run_link(_run(error="x")) is None
