"""What the command-line tests share: a real server on loopback (SQLite, and PostgreSQL
where the test server is configured) with tokens for each role, and the real ``frazil``
program run in a home of its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database
from tests.conftest import fresh_server


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def server(request, tmp_path):
    if request.param == "postgres":
        db = fresh_server("postgres")
    else:
        db = Database(f"sqlite:///{tmp_path / 'server.db'}")
        db.migrate()
    thread = ServerThread(db).start()
    now = time.time()
    roles = (("alice", "user"), ("bob", "user"), ("root", "admin"), ("site-a", "site"))
    tokens = {name: create_token(db, name, role, now=now)[1] for name, role in roles}
    yield thread.url, tokens, db
    thread.stop()
    if request.param == "sqlite":
        db.dispose()


def runner(home: Path, **extra: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
    env.update({"FRAZIL_HOME": str(home), "COLUMNS": "80", **extra})

    def run(*args, ok=True, env_=None, input_=None):
        argv = [sys.executable, "-m", "frazil", *map(str, args)]
        result = subprocess.run(
            argv, capture_output=True, text=True, env={**env, **(env_ or {})}, check=False,
            timeout=120, input=input_,
        )  # fmt: skip
        if ok:
            assert result.returncode == 0, (args, result.stderr)
        else:
            assert result.returncode != 0, (args, result.stdout)
            assert "Traceback" not in result.stderr, result.stderr
        return result

    return run


@pytest.fixture
def interruptible():
    """Child processes that Ctrl-C (SIGINT) reaches. A shell that runs the tests in the
    background (``cmd &``) starts them with SIGINT ignored, and an ignored signal stays
    ignored in every child across exec; a handler here makes the children's default again."""
    before = signal.getsignal(signal.SIGINT)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)
