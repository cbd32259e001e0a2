"""A real server on loopback over a migrated database, and tokens for each role; and
``frazil server`` as a process of its own."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from frazil.client import Client
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database
from tests.faults.conftest import free_port, write_toml


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


@dataclass
class Process:
    proc: subprocess.Popen[bytes]
    port: int
    token: str
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def status(self, key: str) -> int:
        """A VmRSS/VmHWM-style figure of the server process, in kB."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1])
        raise AssertionError(f"no {key} in /proc/{self.proc.pid}/status")

    def open_files_limit(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/limits").read_text().splitlines():
            if line.startswith("Max open files"):
                return int(line.split()[3])
        raise AssertionError("no open-file limit")


def _lower_open_files() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., Process]]:
    """Start `frazil [options] server` with ``[server]`` settings; stopped at the end."""
    started: list[Process] = []

    def start(*options: str, **server: object) -> Process:
        home = tmp_path / f"home{len(started)}"
        home.mkdir()
        db = Database(f"sqlite:///{home / 'frazil.db'}")
        db.migrate()
        _, token = create_token(db, "alice", "user", now=time.time())
        db.dispose()
        port = free_port()
        write_toml(home / "frazil.toml", {"server": {"port": port, **server}})
        log = home / "server.log"
        env = {"FRAZIL_HOME": str(home), "PATH": "/usr/bin:/bin"}
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "frazil", *options, "server"], env=env, stdout=out,
                stderr=subprocess.STDOUT, preexec_fn=_lower_open_files,  # noqa: PLW1509
            )  # fmt: skip
        p = Process(proc, port, token, log)
        started.append(p)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                httpx.get(f"{p.url}/health", timeout=1.0)
                return p
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not answer in 60 s"
                time.sleep(0.1)

    yield start
    for p in started:
        p.proc.terminate()
        try:
            p.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()
