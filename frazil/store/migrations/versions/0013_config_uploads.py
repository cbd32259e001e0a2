"""the files uploaded with a config version

A config may name files by paths relative to its own file (a module's script, a class's
code, a small input); the command line uploads them and the version keeps
``{path: sha256}``, which the server puts in place of those paths when it resolves a task.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 21:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_config") as batch:
        batch.add_column(sa.Column("uploads", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_config") as batch:
        batch.drop_column("uploads")
