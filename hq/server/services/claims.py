"""The long-poll claim: lease up to ``capacity`` jobs; with none queued, wait in line for one.

The wait is a place in the notifier's ``ClaimLine``: a queued job wakes one waiter. A wake-up a
claim receives and does not turn into a lease (it found nothing, its agent went away, it
drains, it failed) is passed on to the next waiter, on every way out: ``claim_line`` is the
context manager that keeps that promise.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.agents import (
    ClaimRequest,
    ClaimResponse,
    CompleteAndClaim,
    CompleteAndClaimResponse,
    CompleteItemResponse,
    InputDownload,
    Lease,
)
from hq.schemas.manifest import stored_manifest
from hq.server import queue
from hq.server.db.models import Agent, Job
from hq.server.metrics import Metrics
from hq.server.notify import ClaimLine, ClaimWaiter, Disconnected, Notifier
from hq.server.services import agents as agent_service
from hq.server.services import leases as lease_service
from hq.server.settings import ServerSettings
from hq.server.storage import ObjectStore, dataset_key

INPUT_URL_EXPIRY_SECONDS = 900


class Turns:
    """One claim's places in the line, and the wake-ups it received and has not used."""

    def __init__(self, line: ClaimLine) -> None:
        self._line = line
        self._unused: list[ClaimWaiter] = []

    @contextlib.contextmanager
    def place(self) -> Iterator[ClaimWaiter]:
        """A place in line for one query and the wait after it. Take it before the query, so
        that a job queued meanwhile wakes it; leaving, a wake-up it got is kept as unused."""
        waiter = self._line.join()
        try:
            yield waiter
        finally:
            self._line.leave(waiter)
            if waiter.woken:
                self._unused.append(waiter)

    def used(self) -> None:
        """A query found work: the wake-ups before it were used."""
        self._unused.clear()

    def pass_on(self) -> None:
        """A query after these wake-ups found nothing: give each to the next waiter."""
        for woken in self._unused:
            self._line.pass_on(woken)
        self._unused.clear()


@contextlib.contextmanager
def claim_line(line: ClaimLine) -> Iterator[Turns]:
    """This claim's turns in ``line``; however the claim ends (an answer, an error, the caller
    gone), every wake-up it did not use goes on to the next waiter."""
    turns = Turns(line)
    try:
        yield turns
    finally:
        turns.pass_on()


async def claim(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    store: ObjectStore,
    metrics: Metrics,
    settings: ServerSettings,
    agent_id: str,
    token_id: str | None,
    body: ClaimRequest,
    disconnected: Disconnected,
) -> ClaimResponse:
    """Lease up to ``body.capacity`` jobs to the agent (``token_id``, None for an admin, must
    be the token that registered it); with none queued, wait up to ``body.wait_s`` for one.
    Each pass is a short transaction of its own: the wait holds none."""
    deadline = time.monotonic() + body.wait_s
    agent: Agent | None = None
    with claim_line(notifier.claims) as turns:
        while True:
            with turns.place() as waiter:
                # Nobody would receive the lease. The first pass runs as the request arrives:
                # asking costs more than its query, and a lease its caller drops is requeued.
                if notifier.closing or (agent is not None and await disconnected()):
                    return ClaimResponse(leases=[])
                async with sessionmaker() as session, session.begin():
                    if agent is None:  # the first pass; a wake-up goes straight to the claim
                        agent = await _check_in(
                            session, agent_id=agent_id, token_id=token_id, settings=settings
                        )
                        if agent.drain_requested:
                            return ClaimResponse(leases=[], drain=True)
                    jobs, leases = await _lease(
                        session, agent=agent, capacity=body.capacity, settings=settings, store=store
                    )
                if leases:
                    turns.used()
                    metrics.observe_claims(jobs)
                    return ClaimResponse(leases=leases)
                turns.pass_on()  # this query came after their wake-ups and found nothing
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return ClaimResponse(leases=[])
                await notifier.wait(waiter.event, remaining)


async def complete_and_claim(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    notifier: Notifier,
    store: ObjectStore,
    metrics: Metrics,
    settings: ServerSettings,
    agent_id: str,
    token_id: str | None,
    body: CompleteAndClaim,
    disconnected: Disconnected,
    backoff: lease_service.Backoff,
) -> CompleteAndClaimResponse:
    """``complete_many`` of ``body.items``, then ``claim`` of ``body.claim``. Each keeps its
    own promises: a result is fenced by its lease token and settled exactly once (a repeated
    request gets the first answers), and a claim that fails after the results were committed
    loses nothing (the agent repeats the request).

    The claim's first pass runs in the results' transaction (one commit, not two; the claim
    sees the slots the results freed). A refusal of the claim itself (another agent's id, a
    draining agent) is answered after the results are committed, as if claimed on its own.
    With nothing to lease at once, the long poll follows as a ``claim`` of its own."""
    results: list[CompleteItemResponse] = []
    if body.items:
        first = FirstPass(
            notifier,
            store,
            settings,
            agent_id=agent_id,
            token_id=token_id,
            capacity=body.claim.capacity,
        )
        done = await lease_service.complete_many(
            sessionmaker=sessionmaker,
            store=store,
            metrics=metrics,
            items=body.items,
            agent_token_id=token_id,
            backoff=backoff,
            then=first,
        )
        results = done.results
        if first.refused is not None:
            raise first.refused
        if first.leases:
            metrics.observe_claims(first.jobs)
        if first.leases or first.drain or body.claim.wait_s == 0 or notifier.closing:
            return CompleteAndClaimResponse(results=results, leases=first.leases, drain=first.drain)
    claimed = await claim(
        sessionmaker=sessionmaker,
        notifier=notifier,
        store=store,
        metrics=metrics,
        settings=settings,
        agent_id=agent_id,
        token_id=token_id,
        body=body.claim,
        disconnected=disconnected,
    )
    return CompleteAndClaimResponse(results=results, leases=claimed.leases, drain=claimed.drain)


class FirstPass:
    """``complete_and_claim``'s claim in the results' transaction, and what it found."""

    def __init__(
        self,
        notifier: Notifier,
        store: ObjectStore,
        settings: ServerSettings,
        *,
        agent_id: str,
        token_id: str | None,
        capacity: int,
    ) -> None:
        self.notifier, self.store, self.settings = notifier, store, settings
        self.agent_id, self.token_id, self.capacity = agent_id, token_id, capacity
        self.jobs: list[Job] = []
        self.leases: list[Lease] = []
        self.drain = False
        self.refused: errors.HQError | None = None

    async def __call__(self, session: AsyncSession) -> None:
        if self.notifier.closing:  # nobody would receive the lease
            return
        try:
            agent = await _check_in(
                session, agent_id=self.agent_id, token_id=self.token_id, settings=self.settings
            )
        except errors.HQError as exc:  # answered once the results are committed
            self.refused = exc
            return
        if agent.drain_requested:
            self.drain = True
            return
        self.jobs, self.leases = await _lease(
            session, agent=agent, capacity=self.capacity, settings=self.settings, store=self.store
        )


async def _lease(
    session: AsyncSession,
    *,
    agent: Agent,
    capacity: int,
    settings: ServerSettings,
    store: ObjectStore,
) -> tuple[list[Job], list[Lease]]:
    """One pass of a claim: the jobs leased to ``agent`` (flushed, the caller commits) and
    their leases."""
    jobs = await queue.claim_jobs(
        session, agent=agent, capacity=capacity, lease_ttl_seconds=settings.lease_ttl_seconds
    )
    return jobs, [await to_lease(job, store=store) for job in jobs]


async def _check_in(
    session: AsyncSession, *, agent_id: str, token_id: str | None, settings: ServerSettings
) -> Agent:
    """The claiming agent, marked seen (a small part of the offline threshold spares a write
    on every claim)."""
    agent = await agent_service.get_agent(session, agent_id=agent_id, token_id=token_id)
    await agent_service.touch(
        session, agent=agent, fresh_seconds=settings.agent_offline_seconds / 20
    )
    return agent


async def to_lease(job: Job, *, store: ObjectStore) -> Lease:
    """A claimed job as the agent needs it, inputs as short-lived presigned URLs."""
    downloads = [
        InputDownload(
            name=name,
            filename=ref["filename"],
            sha256=ref["sha256"],
            size=ref["size"],
            url=await store.presign_get(
                dataset_key(ref["sha256"]), expires_s=INPUT_URL_EXPIRY_SECONDS
            ),
        )
        for name, ref in job.inputs.items()
    ]
    assert job.lease_token is not None and job.lease_expires_at is not None
    return Lease.from_row(
        job,
        job_id=job.id,
        attempt=job.attempts,
        inputs=downloads,
        manifest=stored_manifest(job.manifest),
    )
