"""a pilot's open attempts by index

Every exchange of a multi-task pilot sums what its open attempts hold. The index on the
pilot alone led to every attempt the pilot ever ran, a scan that grew with its work; with the
outcome next to the pilot it leads to the open ones only.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 11:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_task_attempt_pilot_id_outcome"), "task_attempt", ["pilot_id", "outcome"]
    )
    op.drop_index(op.f("ix_task_attempt_pilot_id"), table_name="task_attempt")


def downgrade() -> None:
    op.create_index(op.f("ix_task_attempt_pilot_id"), "task_attempt", ["pilot_id"])
    op.drop_index(op.f("ix_task_attempt_pilot_id_outcome"), table_name="task_attempt")
