"""Whether this host is free to take work: the policy, the host's readings, and ``evaluate``.

An agent told to use only a free host (any ``HQ_AGENT_FREE_*`` setting) claims only while every
rule of its ``Policy`` holds: the 1-minute load average at most ``max_load``, ``MemAvailable`` at
least ``min_memory_bytes``, the local time inside one of the ``windows``, and no keyboard or mouse
input for ``idle_minutes``. ``evaluate`` is pure: the readings and the time are passed in; it
returns why the host is not free (one line, shown on the agents page), or None.

Readings come from ``/proc/loadavg``, ``/proc/meminfo`` and, for input idleness, ``xprintidle``
(X11, when on the PATH with a ``DISPLAY``) or else the newest access/modification time of the
``/dev/input/event*`` devices. Where the idle time cannot be read, the idle rule is ignored (the
agent logs a warning once). A readings file (``HQ_AGENT_FREE_READINGS``, JSON such as ``{"load":
99, "memory_available": "1g", "idle_seconds": 30}``) overrides any reading it names: a hook for
tests and for operators who measure "busy" their own way. It is read on every check; a file that
cannot be parsed makes the host not free, with the error as the reason.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hq.schemas.resources import parse_memory_bytes

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_TIME_RE = re.compile(r"([01]?\d|2[0-4]):([0-5]\d)")
PROC_LOADAVG = Path("/proc/loadavg")
PROC_MEMINFO = Path("/proc/meminfo")
INPUT_DEVICES = Path("/dev/input")


@dataclass(frozen=True)
class Window:
    """Days (0 = Monday) on which the window *starts*, from ``start`` to ``end``; an ``end``
    at or before ``start`` runs past midnight into the next day."""

    days: frozenset[int]
    start: time
    end: time

    def contains(self, now: datetime) -> bool:
        t, day = now.time(), now.weekday()
        if self.start < self.end:  # within one day
            return day in self.days and self.start <= t < self.end
        if self.start == self.end == time(0):  # the whole day
            return day in self.days
        # Past midnight: the evening part belongs to today, the morning part to yesterday.
        return (day in self.days and t >= self.start) or (
            (day - 1) % 7 in self.days and t < self.end
        )


@dataclass(frozen=True)
class Policy:
    max_load: float | None = None
    min_memory_bytes: int | None = None
    windows: tuple[Window, ...] = ()
    windows_text: str = ""
    idle_minutes: float | None = None
    zone: ZoneInfo | None = None  # None: the host's local time

    @property
    def active(self) -> bool:
        """Whether any rule is set (an agent without one never checks)."""
        return bool(
            self.max_load is not None
            or self.min_memory_bytes is not None
            or self.windows
            or self.idle_minutes is not None
        )


@dataclass(frozen=True)
class Readings:
    """What the host reads now; None where a reading cannot be had here."""

    load: float | None = None
    memory_available: int | None = None
    idle_seconds: float | None = None
    error: str | None = None  # the readings file could not be used


def _parse_day(text: str) -> int:
    name = text.strip().lower()[:3]
    if name not in DAYS:
        raise ValueError(f"day {text!r} must be one of {', '.join(DAYS)}")
    return DAYS.index(name)


def _parse_days(text: str) -> frozenset[int]:
    first, dash, last = text.partition("-")
    if not dash:
        return frozenset({_parse_day(first)})
    a, b = _parse_day(first), _parse_day(last)
    return frozenset((a + i) % 7 for i in range((b - a) % 7 + 1))  # fri-mon wraps


def _parse_time(text: str) -> time:
    match = _TIME_RE.fullmatch(text.strip())
    if not match:
        raise ValueError(f"time {text!r} must look like 19:00")
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour == 24 and minute == 0:
        return time(0)
    if hour == 24:
        raise ValueError(f"time {text!r} is past 24:00")
    return time(hour, minute)


def parse_windows(text: str) -> tuple[Window, ...]:
    """``"mon-fri 19:00-07:00,sat-sun"``: comma-separated windows, each days (a day or a range,
    wrapping: ``fri-mon``), a time range, or both; days alone mean the whole day, a time alone
    every day. A range past midnight belongs to the day it starts on."""
    windows = []
    for entry in (e.strip() for e in text.split(",")):
        if not entry:
            continue
        parts = entry.split()
        if len(parts) > 2:
            raise ValueError(f"window {entry!r} must be 'DAYS', 'HH:MM-HH:MM' or both")
        days, hours = frozenset(range(7)), "00:00-24:00"
        for part in parts:
            if ":" in part:
                hours = part
            else:
                days = _parse_days(part)
        start, dash, end = hours.partition("-")
        if not dash:
            raise ValueError(f"time range {hours!r} must look like 19:00-07:00")
        windows.append(Window(days=days, start=_parse_time(start), end=_parse_time(end)))
    return tuple(windows)


def evaluate(policy: Policy, readings: Readings, now: datetime) -> str | None:
    """Why the host is not free now (one line), or None when every rule holds.

    ``now`` is converted to the policy's zone (the host's local time when it has none); a rule
    whose reading is None (cannot be read here) is not applied."""
    if readings.error is not None:
        return readings.error
    load, memory, idle = readings.load, readings.memory_available, readings.idle_seconds
    if policy.max_load is not None and load is not None and load > policy.max_load:
        return f"load {load:.2f} is above {policy.max_load:g}"
    floor = policy.min_memory_bytes
    if floor is not None and memory is not None and memory < floor:
        return f"free memory {_size(memory)} is below {_size(floor)}"
    if policy.windows:
        local = now.astimezone(policy.zone)
        if not any(w.contains(local) for w in policy.windows):
            return f"outside the free windows ({policy.windows_text}), now {local:%a %H:%M}"
    minutes = policy.idle_minutes
    if minutes is not None and idle is not None and idle < minutes * 60:
        return f"keyboard or mouse used {idle / 60:.1f} min ago (free after {minutes:g} min idle)"
    return None


def _size(n: int) -> str:
    for unit, size in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


# -- reading the host -------------------------------------------------------------------------
def read_load() -> float | None:
    try:
        return float(PROC_LOADAVG.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def read_memory_available() -> int | None:
    try:
        for line in PROC_MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    return None


def read_idle_seconds(now: float) -> float | None:
    """Seconds since the last keyboard or mouse input, or None where that cannot be read."""
    if os.environ.get("DISPLAY") and shutil.which("xprintidle"):
        try:
            out = subprocess.run(
                ["xprintidle"], capture_output=True, text=True, timeout=2, check=True
            )
            return int(out.stdout.strip()) / 1000.0
        except (OSError, subprocess.SubprocessError, ValueError):
            pass
    try:
        devices = list(INPUT_DEVICES.glob("event*"))
        newest = max((max(d.stat().st_atime, d.stat().st_mtime) for d in devices), default=None)
    except OSError:
        return None
    return None if newest is None else max(0.0, now - newest)


def read_overrides(path: Path | None) -> dict[str, Any] | str:
    """The readings file's values (empty when unset or absent), or why it cannot be used."""
    if path is None:
        return {}
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        return f"readings file {path} cannot be used: {exc}"
    if not isinstance(data, dict):
        return f"readings file {path} must hold a JSON object"
    return data


def apply_overrides(readings: Readings, data: dict[str, Any] | str) -> Readings:
    """``readings`` with the readings file's values on top (see the module's docstring)."""
    if isinstance(data, str):
        return replace(readings, error=data)
    try:
        if "load" in data:
            readings = replace(readings, load=float(data["load"]))
        if "memory_available" in data:
            value = data["memory_available"]
            memory = parse_memory_bytes(value) if isinstance(value, str) else int(value)
            readings = replace(readings, memory_available=memory)
        if "idle_seconds" in data:
            readings = replace(readings, idle_seconds=float(data["idle_seconds"]))
    except (TypeError, ValueError) as exc:
        return replace(readings, error=f"readings file has a bad value: {exc}")
    return readings


def read_host(*, policy: Policy, readings_file: Path | None, now: float) -> Readings:
    """The readings that ``policy`` needs, overridden by the readings file."""
    readings = Readings(
        load=read_load() if policy.max_load is not None else None,
        memory_available=(read_memory_available() if policy.min_memory_bytes is not None else None),
        idle_seconds=read_idle_seconds(now) if policy.idle_minutes is not None else None,
    )
    return apply_overrides(readings, read_overrides(readings_file))
