"""The tables. Services use these; only ``hq/server/queue/`` writes lease columns."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from hq.server.db.types import BigIntPK, JSONType, UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


QUEUED = "status = 'queued'"
HAS_DEADLINE = "deadline_at IS NOT NULL"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Token(Base):
    __tablename__ = "tokens"
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Script(Base):
    __tablename__ = "scripts"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScriptVersion(Base):
    __tablename__ = "script_versions"
    __table_args__ = (UniqueConstraint("script_name", "version"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    script_name: Mapped[str] = mapped_column(ForeignKey("scripts.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    image: Mapped[str] = mapped_column(String(512))
    digest: Mapped[str] = mapped_column(String(71))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Dataset(Base):
    __tablename__ = "datasets"
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DatasetVersion(Base):
    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("dataset_name", "version"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    dataset_name: Mapped[str] = mapped_column(ForeignKey("datasets.name"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigIntPK)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128), default="application/octet-stream")
    rows: Mapped[int | None] = mapped_column(BigIntPK, nullable=True)
    columns: Mapped[list[str] | None] = mapped_column(JSONType, nullable=True)
    preview: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, nullable=True)
    produced_by_job_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Sweep(Base):
    __tablename__ = "sweeps"
    __table_args__ = (  # the listing: newest first, of all scripts or of one
        Index("ix_sweeps_created", "created_at", "id"),
        Index("ix_sweeps_script_created", "script_name", "created_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    script_name: Mapped[str] = mapped_column(String(63))
    script_version: Mapped[int] = mapped_column(Integer)
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    total: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_created", "created_at", "id"),
        Index("ix_jobs_lease", "status", "lease_expires_at"),
        # Scale (docs/operating.md): ix_jobs_queued (below the class); the wake-up for ended
        # backoffs, over queued jobs only; the reaper's due leases; the listings by script, by
        # status and by finished_at (and the results export of one script, oldest first).
        Index(
            "ix_jobs_queued_run_after",
            "run_after",
            postgresql_where=text(QUEUED),
            sqlite_where=text(QUEUED),
        ),
        Index(
            "ix_jobs_deadline",
            "deadline_at",
            postgresql_where=text(HAS_DEADLINE),
            sqlite_where=text(HAS_DEADLINE),
        ),
        Index("ix_jobs_script_created", "script_name", "created_at", "id"),
        Index("ix_jobs_status_created", "status", "created_at", "id"),
        Index("ix_jobs_finished", "finished_at", "id"),
    )
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    script_name: Mapped[str] = mapped_column(String(63))
    script_version: Mapped[int] = mapped_column(Integer)
    image: Mapped[str] = mapped_column(String(512))
    digest: Mapped[str] = mapped_column(String(71))
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONType)
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer, default=0)
    queue: Mapped[str] = mapped_column(String(63), default="default")
    labels: Mapped[list[str]] = mapped_column(JSONType)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    timeout_s: Mapped[int] = mapped_column(Integer)
    reuse: Mapped[bool] = mapped_column(Boolean, default=False)
    cache_key: Mapped[str] = mapped_column(String(64), index=True)
    reused_from: Mapped[str | None] = mapped_column(String(36), nullable=True)
    sweep_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    # A pipeline step's job: the end listener looks up steps only for these (no query otherwise).
    pipeline_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    repeat: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True, unique=True)
    request_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    agent_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    lease_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # While running: no later than the reaper must act (lease expiry, or the attempt's timeout);
    # NULL otherwise. Written by queue/ only; the reaper finds due jobs by an index range on it.
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Seconds this attempt spent docker-paused on a free-host agent (its heartbeats say): not
    # counted against the timeout, so the reaper's backstop adds them.
    paused_s: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    run_after: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    completed_token: Mapped[str | None] = mapped_column(String(64), nullable=True)
    exit_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_kind: Mapped[str | None] = mapped_column(String(32), nullable=True)
    retry_on: Mapped[list[str]] = mapped_column(JSONType, default=list)
    max_retries: Mapped[int] = mapped_column(Integer, default=0)
    script_retries: Mapped[int] = mapped_column(Integer, default=0)
    unschedulable_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    metrics: Mapped[dict[str, int | float]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    @property
    def resources(self) -> dict[str, Any]:
        """The limits the job runs with: its manifest copy holds them, raised at submit."""
        value = (self.manifest or {}).get("resources", {})
        return dict(value) if isinstance(value, dict) else {}


# The claim's order (priority first, then oldest) over queued jobs only: outside the class, since
# a descending column needs the mapped column.
Index(
    "ix_jobs_queued",
    Job.queue,
    Job.priority.desc(),
    Job.created_at,
    Job.id,
    postgresql_where=text(QUEUED),
    sqlite_where=text(QUEUED),
)


class JobLabel(Base):
    """One row per required label: the claim filters on 'no label the agent lacks'."""

    __tablename__ = "job_labels"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    label: Mapped[str] = mapped_column(String(128), primary_key=True)


class JobResultRow(Base):
    """The accepted result: kept apart from ``jobs`` so listings never load tables."""

    __tablename__ = "job_results"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    attempt: Mapped[int] = mapped_column(Integer)
    tables: Mapped[dict[str, Any]] = mapped_column(JSONType)
    charts: Mapped[list[Any]] = mapped_column(JSONType)


class JobInput(Base):
    __tablename__ = "job_inputs"
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    dataset_name: Mapped[str] = mapped_column(String(63))
    version: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    __table_args__ = (Index("ix_job_inputs_dataset", "dataset_name", "version"),)


class JobEventRow(Base):
    __tablename__ = "job_events"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    agent_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class JobLog(Base):
    __tablename__ = "job_logs"
    __table_args__ = (Index("ix_job_logs_job", "job_id", "id"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"))
    attempt: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    stream: Mapped[str] = mapped_column(String(8))
    text: Mapped[str] = mapped_column(Text)


class Artifact(Base):
    __tablename__ = "artifacts"
    __table_args__ = (UniqueConstraint("job_id", "attempt", "path"),)
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    attempt: Mapped[int] = mapped_column(Integer)
    path: Mapped[str] = mapped_column(String(1024))
    size: Mapped[int] = mapped_column(BigIntPK)
    sha256: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(1200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Agent(Base):
    __tablename__ = "agents"
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    labels: Mapped[list[str]] = mapped_column(JSONType)
    capacity: Mapped[int] = mapped_column(Integer)
    gpus: Mapped[int] = mapped_column(Integer, default=0)
    queues: Mapped[list[str]] = mapped_column(JSONType)
    token_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    drain_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    # Warm containers waiting, per script, as the agent last reported them.
    warm: Mapped[dict[str, int]] = mapped_column(JSONType, default=dict, server_default="{}")
    # Free-host agents (agent/freehost.py): why the host is not free now (None: free, or no
    # policy), and how many of its jobs it holds docker-paused; as the agent last reported.
    not_free: Mapped[str | None] = mapped_column(String(512), nullable=True, default=None)
    paused: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
