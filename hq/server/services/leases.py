"""What an agent does with a lease: heartbeat, complete (one job, or a batch).

``complete`` checks each listed artifact's size and sha256 in storage between a short
transaction that reads the lease and the one that accepts the result, so hashing holds no
database lock: it opens those transactions itself (it takes the sessionmaker). Between the two,
the checked bytes are already stored as blobs (``artifacts.verify_artifacts``); a complete that
dies there leaves the job running with no artifact rows, and the blobs (whole, under their own
hash) are found again by the retried complete.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from hq import errors
from hq.schemas.agents import (
    CompleteBatchResponse,
    CompleteItem,
    CompleteItemResponse,
    CompleteRequest,
    CompleteResponse,
    HeartbeatResponse,
)
from hq.schemas.common import JobStatus
from hq.server import queue
from hq.server.db.models import Job
from hq.server.metrics import Metrics
from hq.server.services import artifacts as artifact_service
from hq.server.services import logs as log_service
from hq.server.services.artifacts import VerifiedArtifacts
from hq.server.storage import ObjectStore

Backoff = queue.Backoff  # how long a retried job waits; routes build it from the settings

Then = Callable[[AsyncSession], Awaitable[None]]  # more work in the accepting transaction

AGENT_FINAL_STATUSES = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.timed_out, JobStatus.cancelled}
)


async def heartbeat(
    session: AsyncSession,
    *,
    job_id: str,
    lease_token: str,
    agent_token_id: str | None,
    lease_ttl_seconds: float,
    paused_s: int = 0,
) -> HeartbeatResponse:
    """Extend the lease (and record the attempt's paused seconds); the answer carries a cancel
    request."""
    job = await queue.get_leased_job(
        session,
        job_id=job_id,
        lease_token=lease_token,
        agent_token_id=agent_token_id,
        for_update=True,
    )
    await queue.renew_lease(
        session, job=job, lease_ttl_seconds=lease_ttl_seconds, paused_s=paused_s
    )
    assert job.lease_expires_at is not None
    return HeartbeatResponse.model_validate(job)


@dataclass
class Report:
    """The end of one attempt as the agent reports it, and what checking it before the
    accepting transaction found: ``attempt``, the attempt whose upload keys hold the listed
    artifacts; ``precheck``, those artifacts verified in storage, or the error ``complete``
    refuses the report with. Both stay None when there is nothing to check (no artifacts, or
    a replay)."""

    job_id: str
    body: CompleteRequest
    attempt: int | None = None
    precheck: VerifiedArtifacts | errors.HQError | None = None


@dataclass(frozen=True)
class Outcome:
    """What a report got: accepted (with its status) or refused (with the error's code)."""

    answer: CompleteItemResponse
    duration_s: float | None  # the accepted attempt's run time; None for a replay or a refusal
    start: str | None = None  # the accepted attempt's container start: warm or cold


async def complete(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    metrics: Metrics,
    job_id: str,
    body: CompleteRequest,
    agent_token_id: str | None,
    backoff: queue.Backoff | None = None,
) -> CompleteResponse:
    """Accept exactly one result per job: a stale token gets 409, the same token twice the
    first answer."""
    [outcome] = await _complete(
        sessionmaker=sessionmaker,
        store=store,
        metrics=metrics,
        reports=[Report(job_id=job_id, body=body)],
        agent_token_id=agent_token_id,
        raise_errors=True,
        backoff=backoff or queue.Backoff(),
    )
    assert outcome.answer.status is not None
    return CompleteResponse(job_id=job_id, status=outcome.answer.status, accepted=True)


async def complete_many(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    metrics: Metrics,
    items: Sequence[CompleteItem],
    agent_token_id: str | None,
    backoff: queue.Backoff | None = None,
    then: Then | None = None,
) -> CompleteBatchResponse:
    """``complete`` for each item, in one transaction. An item that ``complete`` would refuse
    gets its error code and message; the rest go on. ``then`` runs in that transaction, after
    the results (the next claim of ``complete-and-claim``: one commit, not two)."""
    outcomes = await _complete(
        sessionmaker=sessionmaker,
        store=store,
        metrics=metrics,
        reports=[Report(job_id=item.job_id, body=item) for item in items],
        agent_token_id=agent_token_id,
        raise_errors=False,
        backoff=backoff or queue.Backoff(),
        then=then,
    )
    return CompleteBatchResponse(results=[outcome.answer for outcome in outcomes])


async def _complete(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    store: ObjectStore,
    metrics: Metrics,
    reports: list[Report],
    agent_token_id: str | None,
    raise_errors: bool,
    backoff: queue.Backoff,
    then: Then | None = None,
) -> list[Outcome]:
    """Check the artifacts (a read, then storage with no transaction open), then accept or
    refuse every report in one transaction; completions count in ``metrics`` once committed."""
    if any(report.body.artifacts for report in reports):
        async with sessionmaker() as session, session.begin():
            await _attempts_to_verify(session, reports=reports, agent_token_id=agent_token_id)
        await _verify_artifacts(store=store, reports=reports)
    # A refusal found above is raised in ``_settle``, after its replay check: a duplicate
    # complete whose check raced the first one's acceptance (which removes the uploads) gets
    # the first answer, not "missing".
    async with sessionmaker() as session, session.begin():
        outcomes = await _settle(
            session,
            reports=reports,
            agent_token_id=agent_token_id,
            raise_errors=raise_errors,
            backoff=backoff,
        )
        if then is not None:
            await then(session)
    for report, outcome in zip(reports, outcomes, strict=True):
        if outcome.answer.accepted and outcome.answer.status is not None:
            metrics.observe_completion(status=outcome.answer.status, duration_s=outcome.duration_s)
            if outcome.start is not None:
                metrics.starts.labels(kind=outcome.start).inc()
        if outcome.answer.accepted and isinstance(report.precheck, VerifiedArtifacts):
            await artifact_service.discard_uploads(store, verified=report.precheck)
    return outcomes


def _check_status(body: CompleteRequest) -> None:
    if body.status not in AGENT_FINAL_STATUSES:
        raise errors.ValidationFailed(
            f"status must be one of {', '.join(sorted(AGENT_FINAL_STATUSES))}", field="status"
        )


def _is_replay(job: Job | None, body: CompleteRequest) -> bool:
    """Whether this lease token already completed the job (it gets the first answer again)."""
    completed = job.completed_token if job is not None else None
    return completed is not None and completed == body.lease_token


async def _attempts_to_verify(
    session: AsyncSession, *, reports: Sequence[Report], agent_token_id: str | None
) -> None:
    """For each report that lists artifacts, the attempt whose upload keys hold them (or, in
    ``precheck``, what ``complete`` would refuse it with). Read before the storage is, so
    nobody but the lease holder makes HQ hash."""
    leases = await queue.load_leases(
        session,
        ids=[r.job_id for r in reports if r.body.artifacts],
        agent_token_id=agent_token_id,
        lock=False,
    )
    for report in reports:
        if not report.body.artifacts or _is_replay(leases.jobs.get(report.job_id), report.body):
            continue
        try:
            _check_status(report.body)
            job = leases.check(
                job_id=report.job_id,
                lease_token=report.body.lease_token,
                agent_token_id=agent_token_id,
            )
        except errors.HQError as exc:
            report.precheck = exc
        else:
            report.attempt = job.attempts


async def _verify_artifacts(*, store: ObjectStore, reports: Sequence[Report]) -> None:
    """Check each report's listed artifacts in storage (no transaction is open)."""
    for report in reports:
        if report.attempt is None:
            continue
        try:
            report.precheck = await artifact_service.verify_artifacts(
                store=store,
                job_id=report.job_id,
                attempt=report.attempt,
                files=report.body.artifacts,
            )
        except errors.HQError as exc:
            report.precheck = exc


async def _settle(
    session: AsyncSession,
    *,
    reports: Sequence[Report],
    agent_token_id: str | None,
    raise_errors: bool,
    backoff: queue.Backoff,
) -> list[Outcome]:
    """Accept or refuse each report, its job locked (in id order, so batches cannot deadlock)."""
    leases = await queue.load_leases(
        session, ids=[r.job_id for r in reports], agent_token_id=agent_token_id, lock=True
    )
    finishes = queue.Finishes()
    out: list[Outcome] = []
    for report in reports:
        job_id, body = report.job_id, report.body
        try:
            _check_status(body)
            job = leases.jobs.get(job_id)
            if _is_replay(job, body):
                assert job is not None
                out.append(Outcome(_accepted(job_id, JobStatus(job.status)), None))
                continue
            if isinstance(report.precheck, errors.HQError):
                raise report.precheck
            job = leases.check(
                job_id=job_id, lease_token=body.lease_token, agent_token_id=agent_token_id
            )
            duration = await _accept(
                session,
                job=job,
                body=body,
                verified=report.precheck,
                backoff=backoff,
                finishes=finishes,
            )
        except errors.HQError as exc:
            if raise_errors:
                raise
            refused = CompleteItemResponse(
                job_id=job_id, accepted=False, code=exc.code, message=exc.message
            )
            out.append(Outcome(refused, None))
            continue
        out.append(Outcome(_accepted(job_id, body.status), duration, body.start))
    await finishes.write(session)  # before the budgets count the sweeps' failures
    failed = (JobStatus.failed.value, JobStatus.timed_out.value)
    await queue.enforce_sweep_budgets(
        session, sweep_ids=[j.sweep_id for j in leases.jobs.values() if j.status in failed]
    )
    return out


def _accepted(job_id: str, status: JobStatus) -> CompleteItemResponse:
    return CompleteItemResponse(job_id=job_id, accepted=True, status=status)


async def _accept(
    session: AsyncSession,
    *,
    job: Job,
    body: CompleteRequest,
    verified: VerifiedArtifacts | None,
    backoff: queue.Backoff,
    finishes: queue.Finishes,
) -> float | None:
    """Record a result whose lease was checked: artifacts now, results and the final status in
    ``finishes`` (written once for the batch); returns the attempt's run time. Nothing here
    refuses after writing, so a refused item leaves nothing behind."""
    if body.status == JobStatus.succeeded and body.results is not None:
        try:
            body.results.check_tables_referenced()
        except ValueError as exc:
            raise errors.ValidationFailed(f"results: {exc}", field="results") from exc
    if body.artifacts:
        # The lease was checked in this transaction, and a lease token names one attempt.
        if verified is None or (verified.job_id, verified.attempt, verified.files) != (
            job.id,
            job.attempts,
            tuple(body.artifacts),
        ):
            raise RuntimeError(f"artifacts of job {job.id} were not verified for this attempt")
        await artifact_service.record_artifacts(session, verified=verified)
    if body.logs:
        await log_service.add_lines(session, job=job, lines=body.logs)
    kind = _failure_kind(body)
    results = body.results
    retried = queue.retry_class(job, status=body.status, kind=kind) is not None
    reason = body.failure_reason
    if body.status == JobStatus.failed and not reason:
        reason = f"exit code {body.exit_code}" if body.exit_code is not None else "failed"
    if retried:  # back to the queue (rare: the unit of work writes it); its results are not kept
        await queue.end_attempt(
            session,
            job=job,
            status=body.status,
            kind=kind,
            reason=reason,
            exit_code=body.exit_code,
            backoff=backoff,
            replayable=True,
        )
        return None
    finishes.add(
        job,
        status=body.status,
        kind=kind,
        reason=None if body.status == JobStatus.succeeded else reason,
        exit_code=body.exit_code,
        metrics=results.metrics if results is not None else None,
        result=(results.tables, results.charts) if results is not None else None,
    )
    started = job.attempt_started_at
    return (job.finished_at - started).total_seconds() if started and job.finished_at else None


def _failure_kind(body: CompleteRequest) -> str | None:
    """Why the attempt failed; for an agent that names none, a timeout or a non-zero exit."""
    if body.failure_kind is not None or body.status == JobStatus.succeeded:
        return body.failure_kind
    if body.status == JobStatus.timed_out:
        return "timeout"
    return "exit" if body.status == JobStatus.failed and body.exit_code else None
