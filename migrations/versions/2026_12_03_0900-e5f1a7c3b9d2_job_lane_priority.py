"""jobs.lane and jobs.priority: the queue (lane) a job waits in and the fair-share priority its task message
carries (the owner's unfinished jobs in that lane when it was queued, capped; 0 starts first)

Revision ID: e5f1a7c3b9d2
Revises: 7d3e9a41c2b8
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e5f1a7c3b9d2"
down_revision: str | None = "7d3e9a41c2b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lane", sa.String(20), server_default="gpu", nullable=False))
        batch.add_column(sa.Column("priority", sa.Integer(), server_default="0", nullable=False))
    op.create_index("ix_jobs_lane_state_priority", "jobs", ["lane", "state", "priority", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_jobs_lane_state_priority", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("priority")
        batch.drop_column("lane")
