"""iteration_speeds: seconds per iteration the workers measured per stage size and device (estimates)

Revision ID: e5f1a2b3c4d6
Revises: e2b7c5a1d403
Create Date: 2026-12-03 09:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5f1a2b3c4d6"
down_revision: str | None = "e2b7c5a1d403"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "iteration_speeds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("device", sa.String(length=120), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("stage", sa.Integer(), nullable=False),
        sa.Column("pixels", sa.Integer(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("iterations", sa.Integer(), nullable=False),
        sa.Column("seconds_per_iteration", sa.Float(), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_iteration_speeds")),
    )
    op.create_index(
        "ix_iteration_speeds_device_phase_id", "iteration_speeds", ["device", "phase", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_iteration_speeds_device_phase_id", table_name="iteration_speeds")
    op.drop_table("iteration_speeds")
