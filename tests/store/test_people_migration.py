"""Revision 0015 gives every admin or user token an account of its name (the name its
datasets carry as their owner); a name that has an admin token becomes an administrator, and
site tokens belong to no one. Such tokens go on working, as their account."""

from __future__ import annotations

from sqlalchemy import text

from frazil.services import accounts, tokens
from frazil.services.tokens import Role, Scope, hash_token
from frazil.store import Database


def test_tokens_made_before_0015_get_accounts_and_go_on_working(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate("0014")
    made = [("alice", "user", "a1"), ("alice", "user", "a2"), ("root", "user", "r1"),
            ("root", "admin", "r2"), ("site-a", "site", "s1")]  # fmt: skip
    with db.engine.begin() as conn:
        conn.exec_driver_sql(  # a dataset, with its config: tables that refer to it
            "INSERT INTO dataset (id, description, owner, group_name, status, priority, debug, "
            "truncated, always_active, seed, jobs_submitted, jobs_materialized, jobs_complete, "
            "jobs_failed, tasks_per_job, config_version, max_failures, queued_timeout, "
            "processing_timeout, heartbeat_timeout, created_at, updated_at) VALUES (1, '', "
            "'alice', '', 'processing', 1, 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)"
        )
        conn.exec_driver_sql(
            "INSERT INTO dataset_config (dataset_id, version, config, hash, comment, created_at,"
            " created_by) VALUES (1, 1, '{}', 'h', '', 1, 'alice')"
        )
        for name, role, value in made:
            conn.execute(
                text("INSERT INTO token (name, role, hash, created_at) VALUES (:n, :r, :h, 1)"),
                {"n": name, "r": role, "h": hash_token(value)},
            )
    db.migrate()
    assert [(u.name, u.role) for u in accounts.list_users(db)] == [
        ("alice", Role.USER), ("root", Role.ADMIN)
    ]  # fmt: skip
    assert [t.user for t in tokens.list_tokens(db)] == ["alice", "alice", "root", "root", None]
    who = {v: tokens.verify_token(db, v, now=2.0) for v in ("a2", "r1", "r2", "s1")}
    assert (who["a2"].name, who["a2"].role, who["a2"].scope) == ("alice", Role.USER, Scope.WRITE)
    # root's old user token reaches as far as its role did (write), not as far as root's
    assert (who["r1"].role, who["r1"].scope) == (Role.ADMIN, Scope.WRITE)
    assert who["r2"].admin and not who["s1"].person
    with db.read() as conn:  # the dataset stays, not private
        assert conn.exec_driver_sql("SELECT id, private FROM dataset").all() == [(1, 0)]
    db.dispose()
