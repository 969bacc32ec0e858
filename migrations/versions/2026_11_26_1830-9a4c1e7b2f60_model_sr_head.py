"""models.sr_head: the facts of a model's super-resolution head (its key, sr_train, passes, noise amplitude)

Revision ID: 9a4c1e7b2f60
Revises: 5b1f0c2d9e71
Create Date: 2026-11-26 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "9a4c1e7b2f60"
down_revision: str | None = "5b1f0c2d9e71"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("sr_head", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("sr_head")
