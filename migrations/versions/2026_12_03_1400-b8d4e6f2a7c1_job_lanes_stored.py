"""jobs.lane holds the job's real lane ("long" or "interactive"): e5f1a7c3b9d2 added the column but every job was
stored as "gpu", so fair share and queue positions counted an owner's trainings against their samples

Revision ID: b8d4e6f2a7c1
Revises: e5f1a2b3c4d6
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.vocabulary import lane_of

revision: str = "b8d4e6f2a7c1"
down_revision: str | None = "e5f1a2b3c4d6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

jobs = sa.table(
    "jobs",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("params", sa.JSON),
    sa.column("lane", sa.String),
)


def upgrade() -> None:
    connection = op.get_bind()
    rows = connection.execute(sa.select(jobs.c.id, jobs.c.kind, jobs.c.params)).all()
    by_lane: dict[str, list[str]] = {}
    for row in rows:
        by_lane.setdefault(lane_of(row.kind, row.params), []).append(row.id)
    for lane, ids in by_lane.items():
        for start in range(0, len(ids), 500):
            connection.execute(
                sa.update(jobs).where(jobs.c.id.in_(ids[start : start + 500])).values(lane=lane)
            )
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column(
            "lane", existing_type=sa.String(20), server_default="long", existing_nullable=False
        )


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.alter_column("lane", existing_type=sa.String(20), server_default="gpu", existing_nullable=False)
    op.execute(sa.update(jobs).values(lane="gpu"))
