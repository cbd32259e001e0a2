"""statistics indexed by name first

The stats page is paged by statistic name: the next page's names come from an index scan
that stops after a page, and the overall (``*``) figures group by name. The index that began
with the task name served neither.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 10:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_stat", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_stat_dataset_id_name_task_name"),
            ["dataset_id", "name", "task_name"],
            unique=False,
        )
        batch_op.drop_index(batch_op.f("ix_task_stat_dataset_id_task_name_name"))


def downgrade() -> None:
    with op.batch_alter_table("task_stat", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_stat_dataset_id_task_name_name"),
            ["dataset_id", "task_name", "name"],
            unique=False,
        )
        batch_op.drop_index(batch_op.f("ix_task_stat_dataset_id_name_task_name"))
