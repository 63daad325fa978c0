"""Cron parsing and next times (in zones, across DST), interval slots, and the catch-up plan, at
exact times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from hq.schemas import cron
from hq.schemas.schedules import CatchUp, ScheduleCreate
from hq.server.services import slots

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


UTC_ZONE = ZoneInfo("UTC")


def nexts(expr: str, start: datetime, n: int, tz: ZoneInfo = UTC_ZONE) -> list[datetime]:
    parsed, out, at = cron.parse(expr), [], start
    for _ in range(n):
        found = parsed.next_after(at, tz)
        assert found is not None
        out.append(found)
        at = found
    return out


@pytest.mark.parametrize(
    ("expr", "field_values"),
    [
        ("*/15 * * * *", {"minutes": {0, 15, 30, 45}}),
        ("5/20 * * * *", {"minutes": {5, 25, 45}}),
        ("0 9-17/4 * * *", {"hours": {9, 13, 17}}),
        ("0 0 1,15 * *", {"days": {1, 15}}),
        ("0 0 * jan,JUL-sep *", {"months": {1, 7, 8, 9}}),
        ("0 0 * * mon-fri", {"weekdays": {1, 2, 3, 4, 5}}),
        ("0 0 * * 7", {"weekdays": {0}}),
        ("@hourly", {"minutes": {0}, "hours": set(range(24))}),
    ],
)
def test_fields_take_ranges_lists_steps_and_names(
    expr: str, field_values: dict[str, set[int]]
) -> None:
    parsed = cron.parse(expr)
    for name, values in field_values.items():
        assert getattr(parsed, name) == values


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("* * * *", "5 fields"),
        ("60 * * * *", "minute: 60 is outside 0-59"),
        ("* 24 * * *", "hour: 24 is outside 0-23"),
        ("* * 0 * *", "day of month: 0 is outside 1-31"),
        ("* * * 13 *", "month: 13 is outside 1-12"),
        ("* * * * 8", "day of week: 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be >= 1"),
        ("5-1 * * * *", "runs backwards"),
        ("x * * * *", "minute: 'x' is not a number"),
        ("0 0 30 2 *", "matches no date"),
        ("0 0 * * mon,,fri", "day of week: '' is not a number"),
    ],
)
def test_bad_expressions_name_the_field(expr: str, says: str) -> None:
    with pytest.raises(cron.CronError, match=says) as info:
        cron.parse(expr)
    assert info.value.field == "cron"


def test_an_unknown_zone_is_refused_naming_timezone() -> None:
    with pytest.raises(cron.CronError, match="unknown time zone") as info:
        cron.zone("Mars/Olympus")
    assert info.value.field == "timezone"


def test_next_times_step_through_minutes_days_and_month_ends() -> None:
    assert nexts("*/20 * * * *", utc(2026, 1, 1, 23, 50), 3) == [
        utc(2026, 1, 2, 0, 0),
        utc(2026, 1, 2, 0, 20),
        utc(2026, 1, 2, 0, 40),
    ]
    assert nexts("0 0 31 * *", utc(2026, 1, 31, 0, 0), 2) == [utc(2026, 3, 31), utc(2026, 5, 31)]
    assert nexts("0 12 29 2 *", utc(2026, 1, 1), 1) == [utc(2028, 2, 29, 12)]


def test_day_of_month_or_day_of_week_when_both_are_restricted() -> None:
    # The 13th, or any Friday (Vixie cron): 2026-03-06 is a Friday, the 13th is also one.
    assert nexts("0 0 13 * fri", utc(2026, 3, 1), 3) == [
        utc(2026, 3, 6),
        utc(2026, 3, 13),
        utc(2026, 3, 20),
    ]


def test_a_wall_time_in_a_zone_is_that_wall_time_all_year() -> None:
    winter, summer = (
        nexts("30 9 * * *", utc(2026, 1, 10), 1, PARIS),
        nexts("30 9 * * *", utc(2026, 7, 10), 1, PARIS),
    )
    assert winter == [utc(2026, 1, 10, 8, 30)]  # UTC+1
    assert summer == [utc(2026, 7, 10, 7, 30)]  # UTC+2


def test_a_skipped_wall_time_fires_an_hour_later_and_a_repeated_one_fires_once() -> None:
    # New York, 2026-03-08: 02:00 jumps to 03:00; 02:30 does not exist that night.
    spring = nexts("30 2 * * *", utc(2026, 3, 7, 12), 3, NEW_YORK)
    assert [t.astimezone(NEW_YORK).strftime("%d %H:%M") for t in spring] == [
        "08 03:30",
        "09 02:30",
        "10 02:30",
    ]
    # 2026-11-01: 01:00-02:00 happens twice; 01:30 fires at its first occurrence only.
    autumn = nexts("30 1 * * *", utc(2026, 10, 31, 12), 3, NEW_YORK)
    assert autumn == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30), utc(2026, 11, 3, 6, 30)]
    hourly = nexts("0 * * * *", utc(2026, 11, 1, 4, 30), 3, NEW_YORK)  # 00:30 EDT onward
    assert hourly == [utc(2026, 11, 1, 5), utc(2026, 11, 1, 7), utc(2026, 11, 1, 8)]


def test_interval_slots_count_from_the_anchor() -> None:
    timing = slots.Timing(cron=None, timezone="UTC", interval_s=10, anchor_at=utc(2026, 1, 1))
    assert timing.next_after(utc(2025, 12, 31)) == utc(2026, 1, 1)
    assert timing.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 0, 10)
    assert timing.next_after(utc(2026, 1, 1, 0, 0, 25)) == utc(2026, 1, 1, 0, 0, 30)
    assert slots.first_slot(timing, now=utc(2026, 1, 1, 0, 0, 30)) == utc(2026, 1, 1, 0, 0, 30)
    now = datetime(2026, 1, 1, 0, 0, 0, 400_000, tzinfo=UTC)
    assert slots.interval_anchor(now=now, interval_s=5, start_at=None) == utc(2026, 1, 1, 0, 0, 6)


EVERY_10 = slots.Timing(cron=None, timezone="UTC", interval_s=10, anchor_at=utc(2026, 1, 1))
T0 = utc(2026, 1, 1, 0, 1)


@pytest.mark.parametrize("policy", list(CatchUp))
def test_one_slot_on_time_fires_whatever_the_policy(policy: CatchUp) -> None:
    plan = slots.plan(EVERY_10, next_at=T0, now=T0 + timedelta(seconds=1.5), catch_up=policy,
                      grace_s=5)  # fmt: skip
    assert plan == slots.Plan(fire=T0, skipped=0, next_at=T0 + timedelta(seconds=10))


def test_after_an_outage_skip_runs_only_an_on_time_latest_slot() -> None:
    now = T0 + timedelta(seconds=61)  # slots T0 .. T0+60 due; T0+60 is 1 s old
    plan = slots.plan(EVERY_10, next_at=T0, now=now, catch_up=CatchUp.skip, grace_s=5)
    assert plan == slots.Plan(fire=T0 + timedelta(seconds=60), skipped=6,
                              next_at=T0 + timedelta(seconds=70))  # fmt: skip
    late = slots.plan(EVERY_10, next_at=T0, now=T0 + timedelta(seconds=8), catch_up=CatchUp.skip,
                      grace_s=5)  # fmt: skip
    assert late == slots.Plan(fire=None, skipped=1, next_at=T0 + timedelta(seconds=10))


def test_after_an_outage_once_runs_the_latest_missed_slot_only() -> None:
    now = T0 + timedelta(seconds=68)
    plan = slots.plan(EVERY_10, next_at=T0, now=now, catch_up=CatchUp.once, grace_s=5)
    assert plan == slots.Plan(fire=T0 + timedelta(seconds=60), skipped=6,
                              next_at=T0 + timedelta(seconds=70))  # fmt: skip


def test_a_cron_missed_for_long_is_caught_up_in_bounded_steps() -> None:
    every_minute = slots.Timing(cron="* * * * *", timezone="UTC", interval_s=None, anchor_at=None)
    now = T0 + timedelta(minutes=slots.MAX_SLOTS_PER_PLAN + 50, seconds=30)
    first = slots.plan(every_minute, next_at=T0, now=now, catch_up=CatchUp.once, grace_s=5)
    assert first.fire is None and first.skipped == slots.MAX_SLOTS_PER_PLAN
    assert first.next_at == T0 + timedelta(minutes=slots.MAX_SLOTS_PER_PLAN)
    assert first.next_at is not None
    second = slots.plan(every_minute, next_at=first.next_at, now=now, catch_up=CatchUp.once,
                        grace_s=5)  # fmt: skip
    assert second.fire == T0 + timedelta(minutes=slots.MAX_SLOTS_PER_PLAN + 50)
    assert second.skipped == 50


def test_the_request_needs_exactly_one_timing_and_a_real_zone() -> None:
    body = {"name": "nightly", "kind": "job", "body": {"script": "fit"}}
    assert ScheduleCreate(**body, cron="0 2 * * *", timezone="Europe/Paris").cron == "0 2 * * *"
    for bad in ({}, {"cron": "0 2 * * *", "interval_s": 5}, {"cron": "0 2 * * *",
                "start_at": "2026-01-01T00:00:00Z"}, {"interval_s": 5,
                "start_at": "2026-01-01T00:00:00"}):  # fmt: skip
        with pytest.raises(ValidationError):
            ScheduleCreate(**body, **bad)
