"""claim requests

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_hash", sa.String(length=64), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_task_attempt_request_hash"), ["request_hash"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("task_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_attempt_request_hash"))
        batch_op.drop_column("request_hash")
