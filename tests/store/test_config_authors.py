"""Revision 0012 gives each config version its author; versions stored before it take theirs
from the event that the same transaction wrote."""

from __future__ import annotations

from sqlalchemy import MetaData, Table, insert, select, text

from frazil.store import Database
from frazil.store.schema import dataset_config


def test_versions_stored_before_0012_take_their_author_from_the_audit_trail(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    db.migrate("0011")
    with db.engine.begin() as conn:
        old = Table("dataset", MetaData(), autoload_with=conn)  # as it was at 0011
        conn.execute(insert(old).values(
            id=1, status="processing", tasks_per_job=1, max_failures=1, queued_timeout=1,
            processing_timeout=1, heartbeat_timeout=1, created_at=10.0, updated_at=20.0,
            description="", owner="", group_name="", priority=1.0, debug=False, truncated=False,
            always_active=False, seed=0, jobs_submitted=0, jobs_materialized=0, jobs_complete=0,
            jobs_failed=0, config_version=1,
        ))  # fmt: skip
        versions = [(1, 10.0, "submitted"), (2, 20.0, "fix"), (3, 30.0, "no event of its own")]
        for version, at, comment in versions:
            conn.execute(
                text("INSERT INTO dataset_config (dataset_id, version, config, hash, comment, "
                     "created_at) VALUES (1, :v, '{}', 'h', :c, :t)"),
                {"v": version, "c": comment, "t": at},
            )  # fmt: skip
        events = [(10.0, "user:alice", "submit"), (20.0, "admin:root", "edit-config"),
                  (20.0, "user:bob", "suspend"), (30.0, "user:carol", "suspend")]  # fmt: skip
        for at, actor, action in events:
            conn.execute(
                text("INSERT INTO event (time, actor, dataset_id, object_type, object_id, "
                     "action, count, reason) VALUES (:t, :a, 1, 'dataset', '1', :x, 1, '')"),
                {"t": at, "a": actor, "x": action},
            )  # fmt: skip
    db.migrate()
    with db.read() as conn:
        rows = conn.execute(
            select(dataset_config.c.version, dataset_config.c.created_by)
            .order_by(dataset_config.c.version)
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(1, "user:alice"), (2, "admin:root"), (3, "")]
    db.dispose()
