"""Agents report why they take no work (their host is not free) and how many jobs they paused;
a job's heartbeats, the seconds its attempt spent paused (the reaper's timeout backstop adds them).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("paused_s", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("not_free", sa.String(length=512), nullable=True))
        batch_op.add_column(
            sa.Column("paused", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )


def downgrade() -> None:
    with op.batch_alter_table("agents", schema=None) as batch_op:
        batch_op.drop_column("paused")
        batch_op.drop_column("not_free")
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_column("paused_s")
