"""Scale: jobs.deadline_at (when the reaper must act on a running job) and the indexes that keep
the claim, the reaper, the listings and the results export independent of the jobs' history.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hq.server.db.types import UTCDateTime

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

QUEUED = "status = 'queued'"
HAS_DEADLINE = "deadline_at IS NOT NULL"


def _partial(where: str) -> dict[str, object]:
    return {"postgresql_where": sa.text(where), "sqlite_where": sa.text(where)}


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("deadline_at", UTCDateTime(timezone=True), nullable=True))
    # A running job's deadline is at most its lease's expiry and at most its attempt's start
    # (a lower bound of start + timeout): the reaper looks at it on its next tick, and its next
    # renewal writes the exact value.
    op.execute(
        "UPDATE jobs SET deadline_at = CASE WHEN attempt_started_at IS NOT NULL"
        " AND (lease_expires_at IS NULL OR attempt_started_at < lease_expires_at)"
        " THEN attempt_started_at ELSE lease_expires_at END WHERE status = 'running'"
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_claim")
        batch_op.drop_index("ix_jobs_script_name")
        batch_op.create_index(
            "ix_jobs_queued",
            ["queue", sa.text("priority DESC"), "created_at", "id"],
            unique=False,
            **_partial(QUEUED),
        )
        batch_op.create_index(
            "ix_jobs_queued_run_after", ["run_after"], unique=False, **_partial(QUEUED)
        )
        batch_op.create_index(
            "ix_jobs_deadline", ["deadline_at"], unique=False, **_partial(HAS_DEADLINE)
        )
        batch_op.create_index(
            "ix_jobs_script_created", ["script_name", "created_at", "id"], unique=False
        )
        batch_op.create_index(
            "ix_jobs_status_created", ["status", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_jobs_finished", ["finished_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_finished")
        batch_op.drop_index("ix_jobs_status_created")
        batch_op.drop_index("ix_jobs_script_created")
        batch_op.drop_index("ix_jobs_deadline")
        batch_op.drop_index("ix_jobs_queued_run_after")
        batch_op.drop_index("ix_jobs_queued")
        batch_op.create_index("ix_jobs_script_name", ["script_name"], unique=False)
        batch_op.create_index(
            "ix_jobs_claim", ["status", "queue", "priority", "created_at"], unique=False
        )
        batch_op.drop_column("deadline_at")
