"""per-submitter quotas

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quota",
        sa.Column("submitter", sa.String(length=255), nullable=False),
        sa.Column("dataset_jobs", sa.BigInteger(), nullable=True),
        sa.Column("dataset_tasks", sa.BigInteger(), nullable=True),
        sa.Column("jobs", sa.BigInteger(), nullable=True),
        sa.Column("tasks", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("updated_by", sa.String(length=255), nullable=False),
        sa.PrimaryKeyConstraint("submitter", name=op.f("pk_quota")),
    )


def downgrade() -> None:
    op.drop_table("quota")
