"""a log's file

An attempt's logs are kept whole in files under the server's log directory; the row names
its file (relative to that directory) beside the short tail it keeps for the web.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-04 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: a name column compares exactly, case and all (MariaDB: the binary collation)
NAME = sa.String(length=255).with_variant(
    mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
)


def upgrade() -> None:
    with op.batch_alter_table("task_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("path", NAME, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("task_log", schema=None) as batch_op:
        batch_op.drop_column("path")
