"""Shared fixtures: the example config, and databases on every backend.

PostgreSQL and MariaDB runs need ``FRAZIL_TEST_POSTGRES_URL`` / ``FRAZIL_TEST_MARIADB_URL``
(``.ci/run`` sets both) and are marked ``postgres`` / ``mariadb``.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text, update

from frazil.model.spec import DatasetConfig
from frazil.services.submit import config_json
from frazil.store import Database
from frazil.store.schema import dataset_config, metadata

ROOT = pathlib.Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "simulation.yaml"


@pytest.fixture
def example_text() -> str:
    return EXAMPLE.read_text()


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


def store_unchecked(db: Database, dataset_id: int, config: DatasetConfig | dict) -> None:
    """Store ``config`` as the dataset's config without validating it: how a job looks that
    validation never checked (one beyond its sample of jobs, or an older validator's)."""
    if isinstance(config, dict):
        config = DatasetConfig.model_validate(config)
    text = config_json(config)
    with db.begin() as conn:
        conn.execute(
            update(dataset_config)
            .where(dataset_config.c.dataset_id == dataset_id)
            .values(config=text, hash=hashlib.sha256(text.encode()).hexdigest())
        )
