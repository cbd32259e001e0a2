"""names compare exactly on MariaDB and MySQL (binary collation)

MariaDB's default collation folds case, so ``SITE-A`` overwrote ``site-a``, ``STDOUT`` and
``stdout`` logs merged and the alias ``Sim`` clashed with ``sim``. Every name column gets the
binary collation ``utf8mb4_bin`` there; SQLite and PostgreSQL already compare exactly.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 09:00:00.000000
"""

from collections.abc import Sequence

from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, column, nullable) of every VARCHAR(255) name column at revision 0005.
NAME_COLUMNS = [
    ("dataset", "alias", True), ("dataset", "owner", False), ("dataset", "group_name", False),
    ("event", "actor", False), ("event", "object_id", False), ("event", "action", False),
    ("pilot", "site", False), ("pilot", "os", True), ("pilot", "batch_id", True),
    ("pilot", "host", True),
    ("site", "name", False),
    ("software_env", "name", False), ("software_env", "version", False),
    ("token", "name", False),
    ("config_tray", "task_name", False), ("config_tray", "name", False),
    ("config_tray", "iterations", False),
    ("task", "name", False), ("task", "os", True), ("task", "site_req", True),
    ("task", "site", True), ("task", "reserved_for", True),
    ("config_module", "name", False), ("config_module", "class_name", False),
    ("task_attempt", "site", False), ("task_attempt", "host", True),
    ("task_attempt", "batch_id", True),
    ("config_parameter", "task_name", True), ("config_parameter", "name", False),
    ("config_parameter", "value_text", False),
    ("file", "local", False),
    ("task_log", "name", False),
    ("task_stat", "task_name", False), ("task_stat", "name", False),
]  # fmt: skip


def _retype(collation: str | None) -> None:
    if op.get_bind().dialect.name not in ("mysql", "mariadb"):
        return  # SQLite and PostgreSQL compare names exactly already
    for table, column, nullable in NAME_COLUMNS:
        op.alter_column(
            table, column, type_=mysql.VARCHAR(255, collation=collation),
            existing_nullable=nullable,
        )  # fmt: skip


def upgrade() -> None:
    _retype("utf8mb4_bin")


def downgrade() -> None:
    _retype(None)  # the table's default collation again
