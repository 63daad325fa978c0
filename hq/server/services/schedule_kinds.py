"""What each kind of schedule submits, through the service that kind's own route calls.

``KINDS`` maps a ``ScheduleKind`` (job, sweep, pipeline) to its body model and its submit
function; a new kind is one more entry here and one more member of ``ScheduleKind``. ``check``
runs the real submission in a savepoint and rolls it back, so a schedule is refused at creation
by the very checks its first run would meet (script, version, params schema, inputs, ceilings,
sizes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from hq import errors
from hq.schemas.jobs import JobCreate
from hq.schemas.pipelines import PipelineCreate
from hq.schemas.schedules import ScheduleKind
from hq.schemas.sweeps import SweepCreate
from hq.server.notify import TOPICS_KEY
from hq.server.services import pipelines as pipeline_service
from hq.server.services import submissions
from hq.server.services import sweeps as sweep_service
from hq.server.services.limits import check_job_params
from hq.server.settings import ServerSettings


@dataclass(frozen=True)
class Submitted:
    """What one run made: the column of ``schedule_runs`` each id goes to."""

    job_id: str | None = None
    sweep_id: str | None = None
    pipeline_id: str | None = None


Submit = Callable[[AsyncSession, Any, str | None, ServerSettings], Awaitable[Submitted]]


@dataclass(frozen=True)
class Kind:
    model: type[BaseModel]
    submit: Submit  # (session, body model, creator token id, settings)


async def _submit_job(
    session: AsyncSession, body: JobCreate, created_by: str | None, settings: ServerSettings
) -> Submitted:
    check_job_params(body.params, max_bytes=settings.max_params_bytes)
    job, _ = await submissions.submit(
        session,
        body=body,
        created_by=created_by,
        idempotency_key=None,
        offline_seconds=settings.agent_offline_seconds,
        default_timeout_s=settings.default_timeout_seconds,
    )
    return Submitted(job_id=job.id)


async def _submit_sweep(
    session: AsyncSession, body: SweepCreate, created_by: str | None, settings: ServerSettings
) -> Submitted:
    sweep = await sweep_service.create_sweep(
        session,
        body=body,
        created_by=created_by,
        offline_seconds=settings.agent_offline_seconds,
        default_timeout_s=settings.default_timeout_seconds,
        max_params_bytes=settings.max_params_bytes,
        max_sweep_params_bytes=settings.max_sweep_params_bytes,
    )
    return Submitted(sweep_id=sweep.id)


async def _submit_pipeline(
    session: AsyncSession, body: PipelineCreate, created_by: str | None, settings: ServerSettings
) -> Submitted:
    made = await pipeline_service.submit(
        session,
        body=body,
        created_by=created_by,
        offline_seconds=settings.agent_offline_seconds,
        default_timeout_s=settings.default_timeout_seconds,
    )
    return Submitted(pipeline_id=made.id)


KINDS: dict[ScheduleKind, Kind] = {
    ScheduleKind.job: Kind(model=JobCreate, submit=_submit_job),
    ScheduleKind.sweep: Kind(model=SweepCreate, submit=_submit_sweep),
    ScheduleKind.pipeline: Kind(model=PipelineCreate, submit=_submit_pipeline),
}


def parse_body(kind: ScheduleKind, body: dict[str, Any]) -> BaseModel:
    """``body`` as the kind's submit model, or a 422 naming ``body.<field>``."""
    try:
        return KINDS[kind].model.model_validate(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(["body", *(str(p) for p in first["loc"])])
        msg = str(first["msg"]).removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = f"unknown key for a {kind.value} body"
        raise errors.ValidationFailed(f"{where}: {msg}", field=where) from exc


async def submit(
    session: AsyncSession,
    *,
    kind: ScheduleKind,
    body: dict[str, Any],
    created_by: str | None,
    settings: ServerSettings,
) -> Submitted:
    """Submit ``body`` as its kind's route would, as the token ``created_by``."""
    return await KINDS[kind].submit(session, parse_body(kind, body), created_by, settings)


async def check(
    session: AsyncSession,
    *,
    kind: ScheduleKind,
    body: dict[str, Any],
    created_by: str | None,
    settings: ServerSettings,
) -> None:
    """Refuse a body its first run would fail on: the submission, rolled back. Its errors name
    ``body.<field>``; an unknown script or dataset is a 422 here (the schedule is invalid)."""
    model = parse_body(kind, body)
    topics: Counter[str] = Counter(session.info.get(TOPICS_KEY, Counter()))
    savepoint = await session.begin_nested()
    try:
        await KINDS[kind].submit(session, model, created_by, settings)
    except (errors.ValidationFailed, errors.NotFound, errors.PayloadTooLarge) as exc:
        field = f"body.{exc.field}" if exc.field else "body"
        cls = errors.PayloadTooLarge if isinstance(exc, errors.PayloadTooLarge) else None
        raise (cls or errors.ValidationFailed)(f"body: {exc.message}", field=field) from exc
    finally:
        await savepoint.rollback()
        session.info[TOPICS_KEY] = topics  # nothing was queued: wake no claim
