"""Wake-ups for long polls: PostgreSQL LISTEN/NOTIFY across replicas, in-process events always.

A service marks a topic on its session (``mark(session, topic)``); on PostgreSQL the transaction
sends ``pg_notify`` just before it commits, so listeners hear it at commit (a server skips its own
echo). After commit the topic fires in-process at once. Waiters take a ``watch()`` handle
*before* they query, then ``wait()`` on it, so a notification between their query and their wait
is never missed. Idle claims wait in the ``ClaimLine`` instead, woken one per queued job.
A job's end is its own topic (``ended(job_id)``): it wakes the waits for that job only, not
every waiting submit (each of which would read its job again). "done" wakes them all.
Notifications can still be missed across a reconnect, so waiters always re-query on timeout,
and a reconnect fires every topic (waking every idle claim and every wait for an end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

CHANNEL = "hq_events"
QUEUED = "queued"  # wakes idle claims in the ClaimLine, one per queued job
DONE = "done"  # wakes every wait for a job's end; ``ended(job_id)`` wakes those for one job
TOPICS = (QUEUED, DONE, "logs", "tokens", "schedules")
RECONNECT_MAX_SECONDS = 5.0
NOTIFIER_KEY = "hq_notifier"
TOPICS_KEY = "hq_topics"

# How a long wait asks whether its caller went away (a request's ``is_disconnected``).
Disconnected = Callable[[], Awaitable[bool]]


def ended(job_id: str) -> str:
    """The topic of one job's end."""
    return f"{DONE}.{job_id}"


class ClaimWaiter:
    """One idle claim in the line; ``horizon`` is set when a wake-up reaches it: the newest
    waiter that wake-up was meant for (its bound when passed on)."""

    __slots__ = ("event", "horizon", "seq")

    def __init__(self, seq: int) -> None:
        self.seq = seq
        self.event = asyncio.Event()
        self.horizon: int | None = None

    @property
    def woken(self) -> bool:
        return self.horizon is not None


class ClaimLine:
    """Idle long-poll claims, oldest first. A commit that queued n jobs wakes at most n of them
    (not all: every woken claim runs the claim statement, so waking all of many idle agents
    for one job is a thundering herd). A woken claim that takes nothing (the job needs a label
    it lacks, another agent took it, its agent went away) passes the wake-up to the next
    older waiter; the horizon stops that chain once every waiter of the time had a try."""

    def __init__(self) -> None:
        self._waiters: dict[int, ClaimWaiter] = {}  # insertion order is age
        self._seq = 0

    def join(self) -> ClaimWaiter:
        self._seq += 1
        waiter = self._waiters[self._seq] = ClaimWaiter(self._seq)
        return waiter

    def leave(self, waiter: ClaimWaiter) -> None:
        self._waiters.pop(waiter.seq, None)

    def wake(self, n: int | None, *, horizon: int | None = None) -> None:
        """Wake the ``n`` oldest waiters (None: all) that joined by ``horizon`` (default: now)."""
        bound = self._seq if horizon is None else horizon
        for seq in list(self._waiters):
            if seq > bound or (n is not None and n <= 0):
                return
            waiter = self._waiters.pop(seq)
            waiter.horizon = bound
            waiter.event.set()
            if n is not None:
                n -= 1

    def pass_on(self, waiter: ClaimWaiter) -> None:
        """Give ``waiter``'s unused wake-up to the next older waiter (once)."""
        if waiter.horizon is not None:
            horizon, waiter.horizon = waiter.horizon, None
            self.wake(1, horizon=horizon)


class Notifier:
    def __init__(self, *, database_url: str | None) -> None:
        self.claims = ClaimLine()
        # Weak: a topic nobody waits for any more (a wait for a job that has not ended, given
        # up) leaves nothing behind.
        self._events: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._pg_url = _libpq_url(database_url) if database_url else None
        self._task: asyncio.Task[None] | None = None
        self.listening = asyncio.Event()
        self.closing = False  # the server stops: every long wait answers now
        # Sent with each NOTIFY, so this notifier skips its own echo: it fired at commit already.
        self.origin = uuid.uuid4().hex[:12]

    # -- waiting ---------------------------------------------------------------------------
    def watch(self, topic: str) -> asyncio.Event:
        """The event the next ``fire(topic)`` sets; take it before querying."""
        ev = self._events.get(topic)
        if ev is None:
            ev = self._events[topic] = asyncio.Event()
        return ev

    def close(self) -> None:
        """Answer every long wait now (the server is stopping): waiters see ``closing``."""
        self.closing = True
        for topic in TOPICS:
            self.fire(topic)

    async def wait(self, ev: asyncio.Event, timeout: float) -> bool:
        if timeout <= 0 or self.closing:
            return ev.is_set()
        try:
            await asyncio.wait_for(ev.wait(), timeout)
        except TimeoutError:
            return False
        return True

    def fire(self, topic: str, count: int | None = None) -> None:
        """Wake the watchers of ``topic``; for "queued", ``count`` claims (None: all)."""
        if topic == QUEUED:
            self.claims.wake(count)
            return
        if topic == DONE:  # every job's end
            for key in [k for k in self._events if k.startswith(DONE + ".")]:
                self._set(key)
        self._set(topic)

    def _set(self, topic: str) -> None:
        ev = self._events.pop(topic, None)
        if ev is not None:
            ev.set()

    # -- PostgreSQL listener ---------------------------------------------------------------
    async def start(self) -> None:
        if self._pg_url is None:
            self.listening.set()
            return
        self._task = asyncio.create_task(self._listen(), name="hq-notify-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), 10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self) -> None:
        assert self._pg_url is not None
        delay = 0.1
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self._pg_url, autocommit=True
                ) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self.listening.set()
                    delay = 0.1
                    for topic in TOPICS:  # anything sent while we were away: re-query
                        self.fire(topic)
                    async for note in conn.notifies():
                        topic, origin, count = [*note.payload.split(":"), "", ""][:3]
                        if origin != self.origin:
                            self.fire(topic, int(count) if count.isdigit() else None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database went away: reconnect with backoff
                logger.warning("notify listener lost its connection: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)


async def mark(session: AsyncSession, topic: str) -> None:
    """Announce ``topic`` when this session's transaction commits (see the hooks below); each
    mark of "queued" is one more job, and wakes one more idle claim."""
    topics: Counter[str] = session.info.setdefault(TOPICS_KEY, Counter())
    topics[topic] += 1


# A SAVEPOINT's release also dispatches before/after_commit; nothing is visible to others until
# the outermost transaction commits, so the hooks act on that one only (a claim woken at a
# savepoint release would query too early, find nothing, and sleep through the real commit).
@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    """On PostgreSQL, send the marked topics in one NOTIFY statement inside the transaction."""
    topics: Counter[str] = session.info.get(TOPICS_KEY, Counter())
    bind = session.bind
    if (
        not topics
        or session.in_nested_transaction()
        or bind is None
        or bind.dialect.name != "postgresql"
    ):
        return
    notifier = session.info.get(NOTIFIER_KEY)
    origin = notifier.origin if isinstance(notifier, Notifier) else ""
    # "topic:origin", and for "queued" ":count" (how many idle claims to wake)
    payloads = [f"{t}:{origin}" + (f":{topics[t]}" if t == QUEUED else "") for t in sorted(topics)]
    calls = ", ".join(f"pg_notify(:channel, :p{i})" for i in range(len(payloads)))
    params = {"channel": CHANNEL, **{f"p{i}": p for i, p in enumerate(payloads)}}
    session.execute(text(f"SELECT {calls}"), params)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """Fire the topics a committed transaction marked, on the session's notifier."""
    if session.in_nested_transaction():
        return
    topics: Counter[str] = session.info.pop(TOPICS_KEY, Counter())
    target = session.info.get(NOTIFIER_KEY)
    if isinstance(target, Notifier):
        for topic, count in topics.items():
            target.fire(topic, count)


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    # A rolled-back SAVEPOINT keeps the topics: at worst a spurious wake-up, which only re-queries.
    if not session.in_nested_transaction():
        session.info.pop(TOPICS_KEY, None)


def _libpq_url(database_url: str) -> str | None:
    url = make_url(database_url)
    if url.get_backend_name() != "postgresql":
        return None
    return url.set(drivername="postgresql").render_as_string(hide_password=False)
