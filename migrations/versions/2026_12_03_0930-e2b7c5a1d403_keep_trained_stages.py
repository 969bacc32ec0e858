"""jobs.keep_trained_stages: a cancel that keeps the stages trained so far; models.stages_trained: how many
stages of the pyramid the model's checkpoint holds (null: all of them, as for every model before this)

Revision ID: e2b7c5a1d403
Revises: e5f1a7c3b9d2
Create Date: 2026-12-03 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e2b7c5a1d403"
down_revision: str | None = "e5f1a7c3b9d2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(
            sa.Column("keep_trained_stages", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("stages_trained", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("stages_trained")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("keep_trained_stages")
