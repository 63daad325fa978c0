"""Reporting a finished job to HQ: outputs collected and checked, artifacts uploaded, ``complete``.

HQ being away is never a reason to lose a result: uploads and ``complete`` are retried with
exponential backoff (fresh presigned URLs each round, files already uploaded are not sent again)
until HQ answers. A 409 means the lease went elsewhere: the result is dropped, and the container
and folder removed. Only a hard stop of the agent ends the retries, leaving everything on disk for
its next start. Everything here works on one lease, through its handle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agent.context import AgentContext
from agent.final import Final
from agent.logship import LogShipper
from agent.observe import Observer
from agent.warm.container import warm_job
from agent.workspace import Workspace
from hq import errors
from hq.client import LeaseHandle
from hq.schemas.agents import JobOutcome
from hq.schemas.common import JobStatus
from hq.schemas.retries import FailureKind

log = logging.getLogger(__name__)

FIRST_RETRY_SECONDS = 0.5
MAX_REASON_CHARS = 4000  # under JobOutcome's 4096, so a cut reason is always accepted


def report_result(
    *,
    ctx: AgentContext,
    lease: LeaseHandle,
    ws: Workspace,
    logs: LogShipper,
    final: Final,
    container_id: str | None,
    before_complete: Callable[[], None] = lambda: None,
    observer: Observer | None = None,
) -> None:
    """Collect ``outputs/``, check ``results.json``, add what ``observer`` saw (metrics from the
    logs, usage), deliver, and clean up when answered."""
    settings = ctx.settings
    collected = ws.collect(
        max_files=settings.max_artifacts, max_file_bytes=settings.max_artifact_bytes
    )
    for skipped in collected.skipped:
        logs.note(f"not uploaded: {skipped}")
    results, problem = ws.read_results(collected.artifacts)
    if problem:
        logs.note(f"invalid results.json: {problem}")
        if final.status is JobStatus.succeeded:
            final = Final(
                JobStatus.failed, final.exit_code, f"invalid results.json: {problem}", "exit"
            )
    ended = f"job ended: {final.status}" + (
        f" ({final.failure_reason})" if final.failure_reason else ""
    )
    logs.note(ended)
    log.info("%s: %s", lease.job_id, ended, extra={"job_id": lease.job_id})
    last_lines = logs.close_for_complete()  # the last partial line reaches the observer too
    if observer is not None:
        results = observer.observed(ws).merge(results)
    outcome = JobOutcome(
        status=final.status,
        exit_code=final.exit_code,
        failure_reason=final.failure_reason,
        failure_kind=final.kind,
        results=results,
        artifacts=collected.artifacts,
        start=None if container_id is None else ("warm" if warm_job(ws) else "cold"),
        logs=last_lines,
    )
    if deliver(ctx=ctx, lease=lease, ws=ws, outcome=outcome, before_complete=before_complete):
        cleanup(ctx=ctx, ws=ws, container_id=container_id)


def deliver_failure(
    *,
    ctx: AgentContext,
    lease: LeaseHandle,
    ws: Workspace,
    logs: LogShipper,
    reason: str,
    container_id: str | None,
    before_complete: Callable[[], None] = lambda: None,
    kind: FailureKind = "agent-error",
) -> None:
    """Report a job that the agent itself could not run (a bug or a broken host)."""
    logs.note(reason)
    logs.close()
    outcome = JobOutcome(
        status=JobStatus.failed,
        failure_reason=reason[:MAX_REASON_CHARS],
        failure_kind=kind,
    )
    if deliver(ctx=ctx, lease=lease, ws=ws, outcome=outcome, before_complete=before_complete):
        cleanup(ctx=ctx, ws=ws, container_id=container_id)


def cleanup(*, ctx: AgentContext, ws: Workspace, container_id: str | None) -> None:
    if container_id:
        ctx.runner.remove(container_id)
    ws.remove()


def deliver(
    *,
    ctx: AgentContext,
    lease: LeaseHandle,
    ws: Workspace,
    outcome: JobOutcome,
    before_complete: Callable[[], None] = lambda: None,
) -> bool:
    """Upload artifacts and complete, retrying while HQ is away; True once HQ has answered.
    ``before_complete`` runs before each complete call (the heartbeat then expects its end).
    A result HQ refuses (not for its lease) is reported once more as a failure saying why."""
    job_id = lease.job_id
    uploaded: set[str] = set()
    delay = FIRST_RETRY_SECONDS
    refused_once = False
    while True:
        try:
            _upload(ctx=ctx, lease=lease, ws=ws, outcome=outcome, uploaded=uploaded)
            before_complete()
            answer = lease.complete(outcome)
            log.info(
                "job completed: %s (accepted=%s)",
                answer.status,
                answer.accepted,
                extra={"job_id": job_id},
            )
            return True
        except errors.Conflict as exc:
            log.warning(
                "HQ refused the result of job %s (409 %s): %s",
                job_id,
                exc.code,
                exc,
                extra={"job_id": job_id},
            )
            return True
        except errors.HQError as exc:
            if not _transient(exc):
                what = "failure report" if refused_once else "result"
                log.error(
                    "HQ refused the %s of job %s: %s", what, job_id, exc, extra={"job_id": job_id}
                )
                if refused_once:
                    return True
                refused_once = True
                outcome = _refused(outcome, exc=exc, uploaded=uploaded)
                continue
            log.warning(
                "HQ unreachable while reporting job %s, retrying in %.1f s: %s",
                job_id,
                delay,
                exc,
                extra={"job_id": job_id},
            )
        if _stopped(ctx=ctx, job_id=job_id, delay=delay):
            return False
        delay = min(delay * 2, ctx.settings.retry_max_s)


def _transient(exc: errors.HQError) -> bool:
    """HQ (or the way to it) is away for now: worth asking again."""
    return isinstance(exc, errors.TransportError | errors.Unavailable) or (
        exc.status_code >= 500 or exc.status_code == 429
    )


def _refused(outcome: JobOutcome, *, exc: errors.HQError, uploaded: set[str]) -> JobOutcome:
    """What is reported instead of a result HQ refused: a failure that says why, with the
    artifacts that did reach the store."""
    return JobOutcome(
        status=JobStatus.failed,
        exit_code=outcome.exit_code,
        failure_reason=f"HQ refused the result: {exc.message}"[:MAX_REASON_CHARS],
        failure_kind=outcome.failure_kind,
        artifacts=[a for a in outcome.artifacts if a.data is not None or a.path in uploaded],
        logs=outcome.logs,
    )


def _stopped(*, ctx: AgentContext, job_id: str, delay: float) -> bool:
    """Wait ``delay`` before the next try; True when a hard stop came meanwhile."""
    if not ctx.stopping.wait(delay):
        return False
    log.warning(
        "stopping: job %s stays on disk until the next start", job_id, extra={"job_id": job_id}
    )
    return True


def _upload(
    *,
    ctx: AgentContext,
    lease: LeaseHandle,
    ws: Workspace,
    outcome: JobOutcome,
    uploaded: set[str],
) -> None:
    todo = [a.listing() for a in outcome.artifacts if a.data is None and a.path not in uploaded]
    if not todo:
        return
    wanted = {a.path for a in todo}
    answer = lease.upload_urls(todo)
    for item in answer.uploads:
        if item.path not in wanted:  # only ever read the files the agent itself listed
            continue
        ctx.client.upload_url(item.url, ws.outputs / item.path)
        uploaded.add(item.path)
