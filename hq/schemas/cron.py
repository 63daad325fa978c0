"""Standard 5-field cron expressions (minute hour day-of-month month day-of-week) in a time zone.

Each field takes ``*``, numbers, ranges ``a-b``, lists ``a,b``, steps ``*/n`` and ``a-b/n``;
months and weekdays also take names (``jan``, ``mon-fri``); weekday 0 and 7 are Sunday. As in
Vixie cron, when both day-of-month and day-of-week are restricted a day matching either fires.
The macros ``@hourly``, ``@daily`` (``@midnight``), ``@weekly``, ``@monthly`` and ``@yearly``
(``@annually``) are accepted.

Times are wall-clock times in the schedule's zone (``zoneinfo``). Across a DST change: a wall
time that does not exist (the hour skipped in spring) fires at the same offset from the change,
i.e. ``02:30`` on a night that jumps from 02:00 to 03:00 fires at 03:30; a wall time that occurs
twice (the hour repeated in autumn) fires once, at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FIELDS = ("minute", "hour", "day of month", "month", "day of week")
BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
SEARCH_YEARS = 5  # an expression with no match this far ahead (``0 0 30 2 *``) never fires


class CronError(ValueError):
    """An expression or time zone HQ cannot use; the message names the field."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name`` (``Europe/Paris``, ``UTC``), or CronError."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(
            f"unknown time zone {name!r}: give an IANA name such as 'UTC' or 'Europe/Paris'",
            field="timezone",
        ) from exc


def _value(text: str, index: int) -> int:
    names = MONTHS if index == 3 else DAYS if index == 4 else ()
    low = text.lower()
    if low in names:
        return names.index(low) + (1 if index == 3 else 0)
    if not (text.isascii() and text.isdigit()):
        raise CronError(f"{FIELDS[index]}: {text!r} is not a number", field="cron")
    value = int(text)
    lo, hi = BOUNDS[index]
    if not lo <= value <= hi:
        raise CronError(f"{FIELDS[index]}: {value} is outside {lo}-{hi}", field="cron")
    return value


def _part(part: str, index: int) -> set[int]:
    lo, hi = BOUNDS[index]
    base, slash, step_text = part.partition("/")
    step = 1
    if slash:
        if not (step_text.isascii() and step_text.isdigit()) or int(step_text) < 1:
            raise CronError(f"{FIELDS[index]}: step {step_text!r} must be >= 1", field="cron")
        step = int(step_text)
    if base == "*":
        start, end = lo, hi
    elif "-" in base:
        a, _, b = base.partition("-")
        start, end = _value(a, index), _value(b, index)
        if start > end:
            raise CronError(f"{FIELDS[index]}: range {base!r} runs backwards", field="cron")
    else:
        start = _value(base, index)
        end = hi if slash else start  # "5/15" is "5-59/15", as in Vixie cron
    return set(range(start, end + 1, step))


def _field(text: str, index: int) -> set[int]:
    if not text:
        raise CronError(f"{FIELDS[index]} is empty", field="cron")
    values: set[int] = set()
    for part in text.split(","):
        values |= _part(part, index)
    if index == 4 and 7 in values:  # 7 is Sunday too
        values = (values - {7}) | {0}
    return values


@dataclass(frozen=True)
class Cron:
    """A parsed expression: the allowed values of each field."""

    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool  # day of month was '*'
    any_weekday: bool

    def _day_matches(self, day: datetime) -> bool:
        weekday = (day.weekday() + 1) % 7
        in_month, in_week = day.day in self.days, weekday in self.weekdays
        if self.any_day or self.any_weekday:
            return in_month and in_week
        return in_month or in_week

    def _next_wall(self, start: datetime) -> datetime | None:
        """The first naive wall time at or after ``start`` (whole minutes) that matches."""
        t = start
        limit = start + timedelta(days=366 * SEARCH_YEARS)
        while t < limit:
            if t.month not in self.months:
                t = (t.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(t):
                t = t.replace(hour=0, minute=0) + timedelta(days=1)
            elif t.hour not in self.hours:
                t = t.replace(minute=0) + timedelta(hours=1)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime | None:
        """The first slot strictly after ``after`` (aware), in UTC; None if none within years."""
        wall = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
        wall += timedelta(minutes=1)
        while True:
            found = self._next_wall(wall)
            if found is None:
                return None
            at = found.replace(tzinfo=tz).astimezone(UTC)  # fold=0: the first occurrence
            if at > after:
                return at
            wall = found + timedelta(minutes=1)  # a repeated hour's second pass: fired already


@lru_cache(maxsize=256)
def parse(expression: str) -> Cron:
    """Parse ``expression``, or CronError naming the field that is wrong."""
    text = MACROS.get(expression.strip().lower(), expression)
    parts = text.split()
    if len(parts) != len(FIELDS):
        raise CronError(
            f"a cron expression has 5 fields (minute hour day-of-month month day-of-week), "
            f"got {len(parts)} in {expression!r}",
            field="cron",
        )
    sets = [frozenset(_field(p, i)) for i, p in enumerate(parts)]
    cron = Cron(
        minutes=sets[0],
        hours=sets[1],
        days=sets[2],
        months=sets[3],
        weekdays=sets[4],
        any_day=parts[2] == "*",
        any_weekday=parts[4] == "*",
    )
    if cron.next_after(datetime(2000, 1, 1, tzinfo=UTC), ZoneInfo("UTC")) is None:
        raise CronError(f"{expression!r} matches no date (e.g. February 30th)", field="cron")
    return cron
