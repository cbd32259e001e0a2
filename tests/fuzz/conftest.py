"""Servers for the bad-input suite: the real API on loopback, over each backend.

``served`` runs on every backend (SQLite always; PostgreSQL and MariaDB when their URLs are
set), because what a database refuses differs: PostgreSQL takes no NUL in text, PostgreSQL
and MariaDB keep column lengths, SQLite takes any integer up to 64 bits. It serves a whole
module, so its tests must not depend on each other's leftovers. ``fuzz_server`` is one
SQLite server for the schema-driven runs.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.store.schema import dataset, event, token
from tests.conftest import BACKENDS, EXAMPLE, fresh_server


@dataclass
class Served:
    """A running server and a token for each role."""

    db: Database
    url: str
    admin: str
    user: str
    site: str  # for the site called "site-a"
    admin_id: int

    def headers(self, token_value: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token_value or self.admin}"}

    def request(self, method: str, path: str, **options: Any) -> httpx.Response:
        options.setdefault("headers", self.headers())
        return httpx.request(method, self.url + path, timeout=60, **options)

    def counts(self) -> dict[str, int]:
        """Rows of the tables a request could leave something in."""
        with self.db.read() as conn:
            return {
                t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (dataset, event, token)
            }


def _serve(db: Database) -> tuple[ServerThread, Served]:
    server = ServerThread(db)
    server.app.state.frazil.token_ttl = 0.0
    server.start()
    now = time.time()
    made = {role: create_token(db, name, role, now=now) for role, name in (
        ("admin", "root"), ("user", "alice"), ("site", "site-a"))}  # fmt: skip
    served = Served(
        db, server.url, made["admin"][1], made["user"][1], made["site"][1], made["admin"][0].id
    )
    return server, served


@pytest.fixture(scope="module", params=BACKENDS)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Served]:
    """The API on a backend, with the example submitted as ``sim`` (20 jobs to claim from)."""
    kind = request.param
    if kind == "sqlite":
        path = tmp_path_factory.mktemp("served") / "frazil.db"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite:///{path}")
    else:
        db = fresh_server(kind)
    db.migrate()  # the template may be older than the newest schema
    server, s = _serve(db)
    body = {"config": EXAMPLE.read_text(), "alias": "sim", "jobs": 20}
    r = s.request("POST", "/datasets", json=body, headers=s.headers(s.user))
    assert r.status_code == 201, r.text
    yield s
    server.stop()
    if kind == "sqlite":
        db.dispose()


@pytest.fixture(scope="module")
def fuzz_server(
    tmp_path_factory: pytest.TempPathFactory, sqlite_template: Path
) -> Iterator[Served]:
    """One server over SQLite for a module's schema-driven runs, with a dataset to act on."""
    path = tmp_path_factory.mktemp("fuzz") / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    server, s = _serve(db)
    r = s.request("POST", "/datasets", json={"config": EXAMPLE.read_text(), "jobs": 2},
                  headers=s.headers(s.user))  # fmt: skip
    assert r.status_code == 201, r.text
    # no more jobs: a fuzzed "set jobs" must not set the materializer to work for minutes
    assert s.request("POST", f"/datasets/{r.json()['id']}/truncate").status_code == 200
    yield s
    server.stop()
    db.dispose()
