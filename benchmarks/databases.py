"""What the benchmarks share: fresh databases on the test servers, worker results, ports.

Standalone benchmark scripts import this from their own directory (``benchmarks/`` is on
``sys.path`` for them and for the runners).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from frazil.store import Database

#: The database servers (their URLs name a database only to be replaced by ``fresh``).
SERVERS = {
    "postgres": os.environ.get("FRAZIL_BENCH_POSTGRES_URL")
    or os.environ.get("FRAZIL_TEST_POSTGRES_URL")
    or "postgresql+psycopg://root@127.0.0.1:5432/postgres",
    "mariadb": os.environ.get("FRAZIL_BENCH_MARIADB_URL")
    or os.environ.get("FRAZIL_TEST_MARIADB_URL")
    or "mysql+pymysql://root@127.0.0.1:3306/mysql",
}


def admin_engine(backend: str) -> Engine:
    """An autocommit connection pool to the server itself (to create and drop databases)."""
    server = make_url(SERVERS[backend])
    admin = server.set(database="postgres" if backend == "postgres" else "")
    return create_engine(admin, isolation_level="AUTOCOMMIT")


def fresh(backend: str, name: str, workdir: Path) -> str:
    """An empty, migrated database called ``name`` (a file in ``workdir`` for SQLite, a
    database on the server otherwise, dropped first if it exists); returns its URL."""
    if backend == "sqlite":
        url = f"sqlite:///{workdir / f'{name}.db'}"
    else:
        engine = admin_engine(backend)
        force = " WITH (FORCE)" if backend == "postgres" else ""
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
            conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        url = make_url(SERVERS[backend]).set(database=name).render_as_string(hide_password=False)
    db = Database(url)
    db.migrate()
    db.dispose()
    return url


def drop(backend: str, name: str) -> None:
    """Drop database ``name`` from the server (nothing for SQLite: its file goes with its
    directory)."""
    if backend != "sqlite":
        engine = admin_engine(backend)
        force = " WITH (FORCE)" if backend == "postgres" else ""
        with engine.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {name}{force}"))
        engine.dispose()


def result_of(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The last line of a worker process's output, as JSON; exits if the worker failed."""
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"worker failed with exit code {proc.returncode}")
    return dict(json.loads(out.strip().splitlines()[-1]))


def free_port() -> int:
    """A TCP port on loopback that nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def status_mb(pid: int, field: str) -> float:
    """A ``Vm*`` line of ``/proc/<pid>/status``, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def own_peak_mb() -> float:
    """This process's peak RSS. Not ``getrusage``: its ``ru_maxrss`` survives ``execve``, so a
    child of a big parent reports at least the parent's RSS at the fork."""
    return status_mb(os.getpid(), "VmHWM")
