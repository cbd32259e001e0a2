"""a failed task's retry prefers another site

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "avoid_site",
                # a site's name: compared exactly (binary collation) on MariaDB, as in 0006
                sa.String(length=255).with_variant(
                    mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
                ),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_column("avoid_site")
