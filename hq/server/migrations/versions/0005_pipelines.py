"""Pipelines: a spec of steps, one row per step (its job or sweep), and a job's pipeline.

Revision ID: 0005_pipelines
Revises: 0004
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import hq.server.db.types

revision = "0005_pipelines"
down_revision = "0004"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pipeline_id", sa.String(length=36), nullable=True))
    op.create_table(
        "pipelines",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("reuse", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=32), nullable=True),
        sa.Column("created_at", hq.server.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("finished_at", hq.server.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pipelines")),
    )
    op.create_index("ix_pipelines_created", "pipelines", ["created_at", "id"], unique=False)
    op.create_table(
        "pipeline_steps",
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=63), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("spec", _json(), nullable=False),
        sa.Column("needs", _json(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(length=36), nullable=True),
        sa.Column("sweep_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["pipelines.id"],
            name=op.f("fk_pipeline_steps_pipeline_id_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pipeline_id", "name", name=op.f("pk_pipeline_steps")),
    )
    op.create_index(op.f("ix_pipeline_steps_job_id"), "pipeline_steps", ["job_id"], unique=False)
    op.create_index(
        op.f("ix_pipeline_steps_sweep_id"), "pipeline_steps", ["sweep_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_pipeline_steps_sweep_id"), table_name="pipeline_steps")
    op.drop_index(op.f("ix_pipeline_steps_job_id"), table_name="pipeline_steps")
    op.drop_table("pipeline_steps")
    op.drop_index("ix_pipelines_created", table_name="pipelines")
    op.drop_table("pipelines")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("pipeline_id")
