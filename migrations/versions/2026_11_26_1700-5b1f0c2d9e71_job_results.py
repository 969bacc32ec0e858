"""jobs.result: the files a succeeded job produced (an animation, a harmonization, ...) and facts about them

Revision ID: 5b1f0c2d9e71
Revises: c4cd3772a632
Create Date: 2026-11-26 17:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1f0c2d9e71"
down_revision: str | None = "c4cd3772a632"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("result", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("result")
