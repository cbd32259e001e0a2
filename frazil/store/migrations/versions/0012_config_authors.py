"""who stored each version of a dataset's config

``frazil config versions`` lists a config's versions with when, who and why. The version
row held when and why; who stored it was only in the audit trail. Versions stored before
this revision take it from there: the ``submit`` or ``edit-config`` event that the same
transaction wrote (same dataset, same time).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: a name, compared exactly (binary collation) on MariaDB as in 0006
NAME = sa.String(length=255).with_variant(
    mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
)


def upgrade() -> None:
    with op.batch_alter_table("dataset_config", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", NAME, nullable=False, server_default=""))
    op.execute(
        "UPDATE dataset_config SET created_by = COALESCE(("
        "SELECT MIN(event.actor) FROM event WHERE event.dataset_id = dataset_config.dataset_id"
        " AND event.time = dataset_config.created_at"
        " AND event.action IN ('submit', 'edit-config')), '')"
    )


def downgrade() -> None:
    with op.batch_alter_table("dataset_config", schema=None) as batch_op:
        batch_op.drop_column("created_by")
