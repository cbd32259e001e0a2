"""A PostgreSQL server of one test's own, which the test may stop and start.

Made with ``initdb`` in a temporary directory and run with ``pg_ctl`` on a free port (as the
``postgres`` user when we are root: PostgreSQL refuses to run as root). The machine's shared
server (``FRAZIL_TEST_POSTGRES_URL``) is never stopped: other suites may be using it, and a
test killed before its ``finally`` would leave it down for everyone.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import free_port


def _bindir() -> Path | None:
    """Where initdb and pg_ctl are: on PATH, else the newest /usr/lib/postgresql/*/bin."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else None


class PrivatePostgres:
    """``start``, ``stop`` (fast shutdown: connections are cut, as by an administrator)."""

    def __init__(self, bindir: Path, root: Path, as_user: list[str]) -> None:
        self.bindir = bindir
        self.root = root
        self.data = root / "data"
        self.log = root / "postgres.log"
        self.port = free_port()
        self._as = as_user
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/frazil"

    def _run(self, tool: str, *args: str) -> None:
        argv = [*self._as, str(self.bindir / tool), *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)}: exit {result.returncode}: {result.stderr}")

    def create(self) -> None:
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "frazil")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w",
                  "start")  # fmt: skip

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


@contextlib.contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh PostgreSQL server, removed at the end; skips when none can be made here."""
    bindir = _bindir()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    as_user: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="frazil-pg-"))
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(root)
            pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    pg = PrivatePostgres(bindir, root, as_user)
    try:
        try:
            pg.create()
        except (OSError, RuntimeError) as exc:
            pytest.skip(f"cannot run a PostgreSQL server here: {exc}")
        yield pg
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if pg.running:
                pg.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
