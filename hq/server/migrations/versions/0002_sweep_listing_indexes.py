"""Indexes for listing sweeps newest first (GET /api/v1/sweeps).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.create_index("ix_sweeps_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_sweeps_script_created", ["script_name", "created_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sweeps", schema=None) as batch_op:
        batch_op.drop_index("ix_sweeps_script_created")
        batch_op.drop_index("ix_sweeps_created")
