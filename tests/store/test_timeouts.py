"""Statement, read and lock bounds on every backend: a slow or silent database raises in time.

What a server does with the error (503, then recovery) is in tests/faults/test_partition.py.
"""

from __future__ import annotations

import shutil
import sqlite3
import time

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from frazil.config import DatabaseTimeouts
from frazil.errors import DatabaseUnavailable
from frazil.store import Database
from tests.conftest import BACKENDS, server_url

SLOW = {
    # an endless recursive query: only the progress handler stops it
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) FROM c",
    "postgres": "SELECT pg_sleep(30)",
    "mariadb": "SELECT count(*) FROM information_schema.columns a, information_schema.columns b,"
    " information_schema.columns c, information_schema.columns d",
}
BOUNDS = DatabaseTimeouts(connect=5.0, statement=0.5, read=5.0)


@pytest.fixture(params=BACKENDS)
def bounded(request, tmp_path, sqlite_template):
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "frazil.db"
        shutil.copy(sqlite_template, path)
        url = f"sqlite:///{path}"
    else:
        url = server_url(kind)
    db = Database(url, timeouts=BOUNDS)
    yield kind, db
    db.dispose()


def test_a_statement_past_the_statement_timeout_is_stopped_and_the_pool_goes_on(bounded):
    kind, db = bounded
    started = time.monotonic()
    with pytest.raises(DatabaseUnavailable) as caught, db.read() as conn:
        conn.execute(text(SLOW[kind])).all()
    took = time.monotonic() - started
    assert isinstance(caught.value.__cause__, OperationalError)
    assert 0.4 < took < 3.0, took
    for _ in range(3):  # the same pool answers at once afterwards
        with db.read() as conn:
            assert conn.execute(text("SELECT 1")).scalar_one() == 1


def test_without_bounds_the_same_statement_runs_on(tmp_path, sqlite_template):
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}", timeouts=None)
    query = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c LIMIT 3000000) "
    with db.read() as conn:  # a few seconds of work, not stopped
        assert conn.execute(text(query + "SELECT count(*) FROM c")).scalar_one() == 3_000_000


def test_sqlite_waits_for_another_program_s_lock_at_most_the_statement_timeout(
    tmp_path, sqlite_template
):
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}", timeouts=DatabaseTimeouts(statement=0.2, read=1.0))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="locked") as caught:
            db.transaction(lambda conn: conn.execute(text("DELETE FROM token")))
        assert isinstance(caught.value.__cause__, OperationalError)
        # every try of the transaction waits the busy timeout, not the 60 s of before
        assert time.monotonic() - started < 8 * 0.2 + 3.0
    finally:
        other.rollback()
        other.close()
    db.transaction(lambda conn: conn.execute(text("DELETE FROM token")))
