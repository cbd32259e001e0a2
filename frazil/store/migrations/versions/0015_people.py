"""people: accounts, groups and their members; tokens that belong to an account

A token was a bare role. Now a person's token acts as its account (the account's role and
groups, within the token's scope, until it expires), and a dataset may be private to its
owner and group. Every existing admin or user token gets an account of its name (the name
its datasets already carry as their owner); a name with an admin token becomes an admin,
and each token keeps the reach of its old role as its scope (a user token of such a name
stays a write-scope token).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-04 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: a name, compared exactly (binary collation) on MariaDB as in 0006
NAME = sa.String(length=255).with_variant(
    mysql.VARCHAR(255, collation="utf8mb4_bin"), "mysql", "mariadb"
)


def upgrade() -> None:
    op.create_table(
        "account",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", NAME, nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password", sa.String(length=200), nullable=True),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("email", NAME, nullable=True),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("disabled_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account")),
        sa.UniqueConstraint("name", name=op.f("uq_account_name")),
    )
    op.create_table(
        "user_group",
        sa.Column("name", NAME, nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_user_group")),
    )
    op.create_table(
        "group_member",
        sa.Column("group_name", NAME, nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("may_write", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["account.id"], name=op.f("fk_group_member_account_id_account")
        ),
        sa.ForeignKeyConstraint(
            ["group_name"], ["user_group.name"], name=op.f("fk_group_member_group_name_user_group")
        ),
        sa.PrimaryKeyConstraint("group_name", "account_id", name=op.f("pk_group_member")),
    )
    op.create_index(
        op.f("ix_group_member_account_id"), "group_member", ["account_id"], unique=False
    )
    with op.batch_alter_table("token", schema=None) as batch_op:
        batch_op.add_column(sa.Column("account_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("scope", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("expires_at", sa.Double(), nullable=True))
        batch_op.create_index(batch_op.f("ix_token_account_id"), ["account_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_token_account_id_account"), "account", ["account_id"], ["id"]
        )
    # a plain ADD COLUMN (SQLite too): a batch copy would drop the dataset table, which
    # other tables' foreign keys refer to
    op.add_column(
        "dataset", sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.execute(
        "INSERT INTO account (name, role, source, created_at) "
        "SELECT name, CASE WHEN MAX(CASE WHEN role = 'admin' THEN 1 ELSE 0 END) = 1 "
        "THEN 'admin' ELSE 'user' END, 'local', MIN(created_at) "
        "FROM token WHERE role IN ('admin', 'user') GROUP BY name"
    )
    op.execute(
        "UPDATE token SET account_id = "
        "(SELECT account.id FROM account WHERE account.name = token.name), "
        "scope = CASE WHEN role = 'admin' THEN 'admin' ELSE 'write' END "
        "WHERE role IN ('admin', 'user')"
    )


def downgrade() -> None:
    op.drop_column("dataset", "private")
    with op.batch_alter_table("token", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_token_account_id_account"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_token_account_id"))
        batch_op.drop_column("expires_at")
        batch_op.drop_column("scope")
        batch_op.drop_column("account_id")
    op.drop_index(op.f("ix_group_member_account_id"), table_name="group_member")
    op.drop_table("group_member")
    op.drop_table("user_group")
    op.drop_table("account")
