"""Schedules: jobs and sweeps submitted on a cron expression or an interval, and their runs.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hq.server.db.types

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UTC_TIME = hq.server.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column(
            "body",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=True),
        sa.Column("anchor_at", UTC_TIME, nullable=True),
        sa.Column("catch_up", sa.String(length=8), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.Text(), nullable=True),
        sa.Column("next_at", UTC_TIME, nullable=True),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", UTC_TIME, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
    )
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.create_index("ix_schedules_due", ["paused", "next_at"], unique=False)
        batch_op.create_index("ix_schedules_created", ["created_at", "id"], unique=False)
    op.create_table(
        "schedule_runs",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("schedule_id", sa.String(length=36), nullable=False),
        sa.Column("slot_at", UTC_TIME, nullable=False),
        sa.Column("fired_at", UTC_TIME, nullable=False),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("sweep_id", sa.String(length=36), nullable=True),
        sa.Column("pipeline_id", sa.String(length=36), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["schedule_id"],
            ["schedules.id"],
            name=op.f("fk_schedule_runs_schedule_id_schedules"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedule_runs")),
        sa.UniqueConstraint("schedule_id", "slot_at", name=op.f("uq_schedule_runs_schedule_id")),
    )


def downgrade() -> None:
    op.drop_table("schedule_runs")
    with op.batch_alter_table("schedules", schema=None) as batch_op:
        batch_op.drop_index("ix_schedules_created")
        batch_op.drop_index("ix_schedules_due")
    op.drop_table("schedules")
