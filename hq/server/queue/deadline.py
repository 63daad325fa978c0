"""``jobs.deadline_at``: no later than the time the reaper must act on a running job.

That is the earlier of its lease's expiry and its attempt's timeout (the reaper adds its slack to
the timeout, so a job in that slack is looked at and left alone). Every write that gives a job a
lease writes it (the claim, a renewal); every write that ends the lease clears it. A value that
is too early is harmless (the reaper checks each candidate again), one that is too late is not:
so after an outage, when leases are extended, deadlines are left as they were."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Interval, String, cast, func, type_coerce

from hq.server.db.models import Job
from hq.server.db.types import UTCDateTime


def deadline(
    dialect: str, *, now: ColumnElement[datetime], expires: ColumnElement[datetime]
) -> ColumnElement[datetime]:
    """SQL for a job claimed at ``now`` with a lease until ``expires``: the earlier of
    ``expires`` and ``now + timeout_s`` (per row, in the claim's own statement)."""
    if dialect == "postgresql":
        timeout = cast(func.make_interval(0, 0, 0, 0, 0, 0, Job.timeout_s), Interval)
        return type_coerce(func.least(expires, now + timeout), UTCDateTime)
    # SQLite keeps UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff' text, compared as text: whole
    # seconds are added by strftime, the microseconds are carried over from ``now``.
    seconds = "+" + cast(Job.timeout_s, String) + " seconds"
    whole = func.strftime("%Y-%m-%d %H:%M:%S", now, seconds, type_=String)
    shifted = whole + func.substr(now, 20, type_=String)
    return type_coerce(func.min(expires, shifted), UTCDateTime)


def deadline_of(job: Job) -> datetime | None:
    """The deadline of a loaded running job, from its lease, its attempt's start and the time
    it has spent paused."""
    if job.lease_expires_at is None:
        return None
    if job.attempt_started_at is None:
        return job.lease_expires_at
    # Time spent paused on a host that stopped being free does not count against the timeout.
    timeout = timedelta(seconds=job.timeout_s + (job.paused_s or 0))
    return min(job.lease_expires_at, job.attempt_started_at + timeout)
