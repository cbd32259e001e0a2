"""per-submitter quotas

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

#: a name, compared exactly (binary collation) on MariaDB as in 0006
NAME = sa.String(length=255).with_variant(
    mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
)

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quota",
        sa.Column("submitter", NAME, nullable=False),
        sa.Column("dataset_jobs", sa.BigInteger(), nullable=True),
        sa.Column("dataset_tasks", sa.BigInteger(), nullable=True),
        sa.Column("jobs", sa.BigInteger(), nullable=True),
        sa.Column("tasks", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.Double(), nullable=False),
        sa.Column("updated_by", NAME, nullable=False),
        sa.PrimaryKeyConstraint("submitter", name=op.f("pk_quota")),
    )


def downgrade() -> None:
    op.drop_table("quota")
