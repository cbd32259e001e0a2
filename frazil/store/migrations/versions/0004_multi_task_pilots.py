"""multi-task pilots

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 11:19:42.523090
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "pilot",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("site", sa.String(length=255), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("cpu", sa.Integer(), nullable=False),
        sa.Column("gpu", sa.Integer(), nullable=False),
        sa.Column("memory", sa.Double(), nullable=False),
        sa.Column("disk", sa.Double(), nullable=False),
        sa.Column("time", sa.Double(), nullable=False),
        sa.Column("os", sa.String(length=255), nullable=True),
        sa.Column("attributes", sa.Text(), nullable=True),
        sa.Column("batch_id", sa.String(length=255), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("seen_at", sa.Double(), nullable=True),
        sa.Column("ended_at", sa.Double(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("tasks", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pilot")),
    )
    with op.batch_alter_table("pilot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_pilot_site"), ["site"], unique=False)

    with op.batch_alter_table("task_attempt", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pilot_id", sa.BigInteger(), nullable=True))
        batch_op.create_index(batch_op.f("ix_task_attempt_pilot_id"), ["pilot_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_attempt", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_attempt_pilot_id"))
        batch_op.drop_column("pilot_id")

    with op.batch_alter_table("pilot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_pilot_site"))

    op.drop_table("pilot")
