import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from frazil.errors import StoreError
from frazil.store import Database
from frazil.store.db import _transient
from frazil.store.schema import metadata, task_dependency
from tests.conftest import BACKENDS, fresh_server


@pytest.fixture(params=BACKENDS)
def migrated(request, tmp_path):
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'm.db'}")
        db.migrate()
        return db
    return fresh_server(request.param)


def test_migrations_build_exactly_the_schema(migrated):
    with migrated.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    assert migrated.current_revision() == Database.head_revision()
    migrated.check_schema()
    migrated.migrate()  # again: nothing to do
    assert migrated.current_revision() == Database.head_revision()


def test_an_empty_database_asks_for_init(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError, match="run `frazil init`"):
        db.check_schema()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'x' / 'f.db'}")  # the directory is made too
    db.migrate()
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    with pytest.raises(Exception, match="FOREIGN KEY"), db.begin() as conn:
        conn.execute(task_dependency.insert().values(dataset_id=42, task_index=0, depends_on=1))


def test_sqlite_writers_queue_for_the_lock(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'lock.db'}")
    db.migrate()
    holding = threading.Event()
    release = threading.Event()

    def hold():
        with db.begin() as conn:
            conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    started = time.monotonic()
    threading.Timer(0.3, release.set).start()
    with db.begin() as conn:  # waits for the holder instead of failing
        conn.execute(text("CREATE TABLE IF NOT EXISTS t (x INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
    assert time.monotonic() - started >= 0.25
    holder.join()
    with db.read() as conn:
        assert conn.execute(select(text("count(*)")).select_from(text("t"))).scalar() == 1


class _Orig(Exception):
    def __init__(self, *args, sqlstate=None):
        super().__init__(*args)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("orig", "retry"),
    [
        (_Orig("deadlock", sqlstate="40P01"), True),
        (_Orig("could not serialize", sqlstate="40001"), True),
        (_Orig(1213, "Deadlock found"), True),
        (_Orig(1205, "Lock wait timeout"), True),
        (_Orig("database is locked"), True),
        (_Orig("syntax error", sqlstate="42601"), False),
        (_Orig(1064, "You have an error in your SQL syntax"), False),
    ],
)
def test_transient_errors_are_retried_and_others_not(orig, retry):
    assert _transient(OperationalError("stmt", {}, orig)) is retry


def test_transaction_retries_then_succeeds(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'r.db'}")
    calls = []

    def flaky(conn):
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("stmt", {}, _Orig("database is locked"))
        return "done"

    assert db.transaction(flaky) == "done" and len(calls) == 3
    with pytest.raises(OperationalError):
        db.transaction(
            lambda conn: (_ for _ in ()).throw(
                OperationalError("s", {}, _Orig("x", sqlstate="42601"))
            )
        )


def test_unsupported_backends_are_refused():
    with pytest.raises(StoreError, match="unsupported database"):
        Database("oracle://scott@tiger/db")
