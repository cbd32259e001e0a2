"""The contract suite's fixtures: every test here runs on SQLite, PostgreSQL and MariaDB.

PostgreSQL and MariaDB runs need ``FRAZIL_TEST_POSTGRES_URL`` / ``FRAZIL_TEST_MARIADB_URL``
(``.ci/run`` sets both) and are marked ``postgres`` / ``mariadb``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text

from frazil.model.spec import DatasetConfig
from frazil.store import Database
from frazil.store.schema import metadata

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", marks=pytest.mark.postgres, id="postgres"),
    pytest.param("mariadb", marks=pytest.mark.mariadb, id="mariadb"),
]

_ENV = {"postgres": "FRAZIL_TEST_POSTGRES_URL", "mariadb": "FRAZIL_TEST_MARIADB_URL"}
_servers: dict[str, Database] = {}


def server_url(kind: str) -> str:
    """The URL of a test server, or skip with the reason."""
    url = os.environ.get(_ENV[kind])
    if not url:
        pytest.skip(f"{_ENV[kind]} is not set: no {kind} server to run this test against")
    return url


def fresh_server(kind: str) -> Database:
    """A migrated, empty database on a test server (migrated once per session)."""
    db = _servers.get(kind)
    if db is None:
        db = Database(server_url(kind))
        with db.begin() as conn:
            metadata.drop_all(conn)
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
        db.migrate()
        _servers[kind] = db
    tables = [t.name for t in reversed(metadata.sorted_tables)]
    with db.begin() as conn:
        if kind == "postgres":
            conn.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for name in tables:
                conn.execute(text(f"DELETE FROM {name}"))
    return db


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "frazil.db"
    db = Database(f"sqlite:///{path}")
    db.migrate()
    db.dispose()
    return path


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path):
    kind = request.param
    if kind == "sqlite":
        path = tmp_path / "frazil.db"
        shutil.copy(sqlite_template, path)
        database = Database(f"sqlite:///{path}")
    else:
        database = fresh_server(kind)
    yield database
    if kind == "sqlite":
        database.dispose()


def make_config(shape: str = "chain", n: int = 3, **task_extra) -> DatasetConfig:
    """A small config: ``chain`` (t0 <- t1 <- ...), ``diamond`` (a -> b, c -> d) or ``flat``."""

    def task(name, depends=(), **extra):
        return {
            "name": name,
            "depends": list(depends),
            "trays": [{"modules": [{"src": "run.sh", "args": "$args(job)"}]}],
            **task_extra,
            **extra,
        }

    if shape == "chain":
        tasks = [task(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(n)]
    elif shape == "diamond":
        tasks = [task("a"), task("b", ["a"]), task("c", ["a"]), task("d", ["b", "c"])]
    else:
        tasks = [task(f"t{i}") for i in range(n)]
    return DatasetConfig.model_validate(
        {"description": f"{shape} test", "options": {"max_failures": 3}, "tasks": tasks}
    )
