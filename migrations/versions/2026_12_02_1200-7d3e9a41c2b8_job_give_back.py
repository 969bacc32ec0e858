"""jobs.given_back and jobs.unavailable_since: attempts handed back because a dependency was unavailable
(not counted against max_attempts), and since when the job has been waiting for one

Revision ID: 7d3e9a41c2b8
Revises: 9a4c1e7b2f60
Create Date: 2026-12-02 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7d3e9a41c2b8"
down_revision: str | None = "9a4c1e7b2f60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("given_back", sa.Integer(), server_default="0", nullable=False))
        batch.add_column(sa.Column("unavailable_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("unavailable_since")
        batch.drop_column("given_back")
