import threading
import time

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select, text
from sqlalchemy.exc import (
    DBAPIError,
    IntegrityError,
    InterfaceError,
    NoResultFound,
    OperationalError,
    ProgrammingError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout

from frazil.errors import ConstraintViolated, DatabaseUnavailable, StatementFailed, StoreError
from frazil.store import Database
from frazil.store.db import _transient, translated
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
    with pytest.raises(DatabaseUnavailable) as caught:
        db.transaction(
            lambda conn: (_ for _ in ()).throw(
                OperationalError("s", {}, _Orig("x", sqlstate="42601"))
            )
        )
    assert isinstance(caught.value.__cause__, OperationalError)


def test_unsupported_backends_are_refused():
    with pytest.raises(StoreError, match="unsupported database"):
        Database("oracle://scott@tiger/db")


def _invalidated(error: DBAPIError) -> DBAPIError:
    error.connection_invalidated = True
    return error


@pytest.mark.parametrize(
    ("raw", "ours"),
    [
        (OperationalError("s", {}, _Orig("server closed the connection")), DatabaseUnavailable),
        (InterfaceError("s", {}, _Orig("the connection is closed")), DatabaseUnavailable),
        (PoolTimeout("QueuePool limit of size 5 overflow 10 reached"), DatabaseUnavailable),
        (_invalidated(ProgrammingError("s", {}, _Orig("closed database"))), DatabaseUnavailable),
        (IntegrityError("s", {}, _Orig("UNIQUE constraint failed")), ConstraintViolated),
        (ProgrammingError("s", {}, _Orig("syntax error at or near")), StatementFailed),
        (DBAPIError("s", {}, _Orig("something else")), StatementFailed),
    ],
)
def test_the_database_s_errors_are_translated_with_the_original_as_cause(raw, ours):
    with pytest.raises(ours) as caught, translated():
        raise raw
    assert type(caught.value) is ours and caught.value.__cause__ is raw
    first = str(raw.orig if isinstance(raw, DBAPIError) else raw).splitlines()[0]
    assert caught.value.reason == first


def test_a_mistake_in_the_calling_code_is_not_translated():
    with pytest.raises(NoResultFound), translated():
        raise NoResultFound("No row was found when one was required")


def test_a_lost_connection_raises_database_unavailable_and_the_pool_goes_on(db):
    calls = []

    def lose_it(conn):
        calls.append(1)
        conn.connection.dbapi_connection.close()  # as a server that went away would
        return conn.execute(text("SELECT 1")).scalar()

    with pytest.raises(DatabaseUnavailable) as caught:
        db.transaction(lose_it)
    cause = caught.value.__cause__
    assert isinstance(cause, DBAPIError) and cause.connection_invalidated
    assert str(caught.value).startswith("the database is unavailable: ")
    with pytest.raises(DatabaseUnavailable), db.read() as conn:
        lose_it(conn)
    with db.read() as conn:  # a fresh connection replaces the lost one
        assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_an_unreachable_database_raises_database_unavailable(db, tmp_path):
    if db.backend == "sqlite":
        url = f"sqlite:///{tmp_path}"  # a directory: SQLite cannot open it
    else:
        url = db.url.set(host="127.0.0.1", port=1).render_as_string(hide_password=False)
    down = Database(url)
    try:
        for call in (lambda: down.transaction(lambda conn: None), down.current_revision):
            with pytest.raises(DatabaseUnavailable) as caught:
                call()
            assert isinstance(caught.value.__cause__, OperationalError)
        with pytest.raises(StoreError, match="cannot reach the database") as caught:
            down.check_schema()
        assert isinstance(caught.value.__cause__, DatabaseUnavailable)
    finally:
        down.dispose()


def test_an_error_that_a_retry_cannot_cure_is_not_retried(db):
    calls = []

    def orphan(conn):
        calls.append(1)
        conn.execute(task_dependency.insert().values(dataset_id=42, task_index=0, depends_on=1))

    with pytest.raises(ConstraintViolated) as caught:
        db.transaction(orphan)
    assert calls == [1]
    assert isinstance(caught.value.__cause__, IntegrityError)
    assert str(caught.value).startswith("the database refused a statement: ")


def test_a_transient_error_is_retried_then_translated_once(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 't.db'}")
    locked = OperationalError("s", {}, _Orig("database is locked"))
    calls = []

    def busy(conn):
        calls.append(1)
        raise locked

    with pytest.raises(DatabaseUnavailable, match="database is locked") as caught:
        db.transaction(busy, attempts=3)
    assert len(calls) == 3 and caught.value.__cause__ is locked


def test_a_malformed_url_is_a_store_error():
    with pytest.raises(StoreError, match="not a database URL"):
        Database("not a url at all")
    with pytest.raises(StoreError, match="cannot use the database"):
        Database("postgresql+nodriver://scott@tiger/db")
