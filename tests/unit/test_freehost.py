"""The free-host policy: ``evaluate`` over rules, readings and times (windows past midnight,
day ranges, zones), the readings file, and the settings that build a policy."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from agent.freehost import (
    Policy,
    Readings,
    apply_overrides,
    evaluate,
    parse_windows,
    read_host,
    read_overrides,
)
from agent.settings import AgentSettings

UTCZ = ZoneInfo("UTC")
# 2026-01-05 is a Monday.
MON = 5


def at(day: int, hh: int, mm: int = 0) -> datetime:
    """2026-01-<day> hh:mm UTC (5 = Monday ... 11 = Sunday)."""
    return datetime(2026, 1, day, hh, mm, tzinfo=UTC)


def windowed(text: str) -> Policy:
    return Policy(windows=parse_windows(text), windows_text=text, zone=UTCZ)


NIGHTS_AND_WEEKENDS = "mon-fri 19:00-07:00,sat-sun"


@pytest.mark.parametrize(
    ("when", "free"),
    [
        (at(MON, 12), False),  # Monday noon
        (at(MON, 18, 59), False),
        (at(MON, 19), True),  # Monday evening
        (at(MON + 1, 3), True),  # Tuesday 03:00: Monday's night
        (at(MON + 1, 6, 59), True),
        (at(MON + 1, 7), False),  # the end is exclusive
        (at(MON, 3), False),  # Monday 03:00 belongs to Sunday's night: Sunday has no night
        (at(MON + 4, 23), True),  # Friday night
        (at(MON + 5, 3), True),  # Saturday (the whole day, and Friday's night)
        (at(MON + 5, 12), True),
        (at(MON + 6, 23, 59), True),  # Sunday
        (at(MON + 7, 0, 30), False),  # the next Monday 00:30: Sunday's window ended at 24:00
    ],
)
def test_windows_past_midnight_and_whole_days(when: datetime, free: bool) -> None:
    reason = evaluate(windowed(NIGHTS_AND_WEEKENDS), Readings(), when)
    assert (reason is None) is free, reason
    if not free:
        assert reason is not None and "outside the free windows" in reason


@pytest.mark.parametrize(
    ("text", "when", "free"),
    [
        ("fri-mon", at(MON + 6, 10), True),  # a range wrapping over the week's end
        ("fri-mon", at(MON, 10), True),
        ("fri-mon", at(MON + 1, 10), False),
        ("wed", at(MON + 2, 0), True),
        ("wed", at(MON + 3, 0), False),
        ("09:00-17:00", at(MON + 3, 9), True),  # a time alone: every day
        ("09:00-17:00", at(MON + 6, 17), False),
        ("22:00-02:00", at(MON + 6, 1), True),  # every day, past midnight
        ("22:00-02:00", at(MON + 6, 2), False),
        ("sat 22:00-02:00", at(MON + 6, 1), True),  # Saturday night runs into Sunday
        ("sat 22:00-02:00", at(MON + 6, 23), False),
        ("00:00-24:00", at(MON, 0), True),
        ("tue 08:00-09:00, thu 08:00-09:00", at(MON + 3, 8, 30), True),
        ("Monday", at(MON, 1), True),  # full names are accepted by their first three letters
    ],
)
def test_window_forms(text: str, when: datetime, free: bool) -> None:
    assert (evaluate(windowed(text), Readings(), when) is None) is free


def test_windows_are_read_in_the_policy_zone() -> None:
    policy = Policy(
        windows=parse_windows("19:00-07:00"),
        windows_text="19:00-07:00",
        zone=ZoneInfo("Asia/Tokyo"),  # UTC+9
    )
    assert evaluate(policy, Readings(), at(MON, 11)) is None  # 20:00 in Tokyo
    reason = evaluate(policy, Readings(), at(MON, 3))  # 12:00 in Tokyo
    assert reason is not None and "Mon 12:00" in reason


@pytest.mark.parametrize(
    "bad", ["mon-fri 19:00", "funday", "25:00-01:00", "mon 1:00-2:00 extra", "10:00-24:30"]
)
def test_bad_windows_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_windows(bad)


def test_load_memory_and_idle_rules() -> None:
    policy = Policy(max_load=2.0, min_memory_bytes=2 * 1024**3, idle_minutes=10)
    now = at(MON, 12)
    good = Readings(load=1.5, memory_available=3 * 1024**3, idle_seconds=3600)
    assert evaluate(policy, good, now) is None
    assert evaluate(policy, Readings(load=2.0, memory_available=2 * 1024**3), now) is None

    reason = evaluate(policy, Readings(load=99, memory_available=3 * 1024**3), now)
    assert reason == "load 99.00 is above 2"
    reason = evaluate(policy, Readings(load=1, memory_available=1024**3), now)
    assert reason == "free memory 1.0 GiB is below 2.0 GiB"
    reason = evaluate(policy, Readings(load=1, memory_available=3 * 1024**3, idle_seconds=90), now)
    assert reason == "keyboard or mouse used 1.5 min ago (free after 10 min idle)"


def test_a_reading_that_cannot_be_had_is_not_applied() -> None:
    policy = Policy(max_load=1.0, idle_minutes=5)
    assert evaluate(policy, Readings(load=None, idle_seconds=None), at(MON, 12)) is None


def test_no_rule_means_free_and_inactive() -> None:
    assert not Policy().active
    assert evaluate(Policy(), Readings(load=1000), at(MON, 12)) is None
    assert Policy(max_load=1).active


def test_the_first_failing_rule_is_the_reason() -> None:
    policy = Policy(max_load=1.0, windows=parse_windows("sat"), windows_text="sat", zone=UTCZ)
    reason = evaluate(policy, Readings(load=5), at(MON, 12))
    assert reason is not None and reason.startswith("load")


def test_the_readings_file_overrides_the_host(tmp_path: Path) -> None:
    path = tmp_path / "readings.json"
    policy = Policy(max_load=1000.0, min_memory_bytes=1)
    real = read_host(policy=policy, readings_file=path, now=0.0)  # absent: the real readings
    assert real.load is not None and real.memory_available is not None and real.error is None
    path.write_text(json.dumps({"load": 99, "memory_available": "1g", "idle_seconds": 7}))
    over = read_host(policy=policy, readings_file=path, now=0.0)
    assert (over.load, over.memory_available, over.idle_seconds) == (99.0, 1024**3, 7.0)


@pytest.mark.parametrize(
    ("content", "expected"),
    [("{not json", "cannot be used"), ("[1]", "JSON object"), ('{"load": "x"}', "bad value")],
)
def test_a_broken_readings_file_makes_the_host_not_free(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "readings.json"
    path.write_text(content)
    readings = apply_overrides(Readings(load=0.1), read_overrides(path))
    reason = evaluate(Policy(max_load=5), readings, at(MON, 12))
    assert reason is not None and expected in reason


def test_settings_build_the_policy() -> None:
    s = AgentSettings(
        agent_free_max_load=1.5,
        agent_free_min_memory="2g",
        agent_free_windows=NIGHTS_AND_WEEKENDS,
        agent_free_timezone="Europe/Paris",
        agent_free_idle_minutes=10,
        agent_when_busy="pause",
    )
    policy = s.free_policy
    assert policy.active and policy.max_load == 1.5 and policy.min_memory_bytes == 2 * 1024**3
    assert len(policy.windows) == 2 and policy.zone == ZoneInfo("Europe/Paris")
    assert not AgentSettings().free_policy.active
    empty = AgentSettings(
        agent_free_max_load="",
        agent_free_idle_minutes="",
        agent_free_min_memory="",
        agent_free_windows="",
        agent_free_timezone="",
    )  # type: ignore[arg-type]
    assert not empty.free_policy.active  # empty variables (compose's ${X:-}) set no rule


@pytest.mark.parametrize(
    "bad",
    [
        {"agent_free_min_memory": "lots"},
        {"agent_free_windows": "mon-fri 7pm"},
        {"agent_free_timezone": "Mars/Olympus"},
        {"agent_when_busy": "sleep"},
        {"agent_free_max_load": -1},
    ],
)
def test_bad_settings_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        AgentSettings(**bad)  # type: ignore[arg-type]
