"""A real server on loopback over a migrated database, and tokens for each role."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from frazil.client import Client
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database


@dataclass
class Live:
    db: Database
    url: str
    server: ServerThread
    admin: str
    user: str
    site: str  # a site token for the site called "site-a"

    def client(self, token: str | None = None, **options) -> Client:
        return Client(self.url, token or self.admin, retry_for=0, **options)


@pytest.fixture
def live(tmp_path: Path, sqlite_template: Path):
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    db.migrate()  # the template may be older than the newest schema
    server = ServerThread(db)
    server.app.state.frazil.token_ttl = 0.0
    server.start()
    now = time.time()
    tokens = {role: create_token(db, name, role, now=now)[1] for role, name in (
        ("admin", "root"), ("user", "alice"), ("site", "site-a"))}  # fmt: skip
    yield Live(db, server.url, server, tokens["admin"], tokens["user"], tokens["site"])
    server.stop()
    db.dispose()
