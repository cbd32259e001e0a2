"""How long the database may take before a caller gives up: connect, statement and read.

A database that stops answering without refusing (a network partition, a stopped server, a
proxy that holds its connections) would otherwise hang every request for its whole length.
Each backend gets three bounds (``DatabaseTimeouts``, ``[database]`` in ``frazil.toml``):

- **connect**: opening a connection, authentication included (PostgreSQL and MariaDB;
  ``connect_timeout``). It also bounds the wait for a free pooled connection.
- **statement**: one statement, stopped by the server itself (PostgreSQL
  ``statement_timeout``, MariaDB ``max_statement_time``, MySQL ``max_execution_time``).
  SQLite waits at most this long for a lock (its busy timeout) and interrupts a statement
  that runs longer (a progress handler).
- **read**: waiting for any answer on an open connection, enforced on our side: PyMySQL's
  ``read_timeout``/``write_timeout``; for psycopg, every wait on the connection's socket
  (a statement, a commit, a ping) carries this deadline, after which the connection is
  closed. TCP keepalives and ``tcp_user_timeout`` also drop a PostgreSQL connection whose
  packets go unanswered. It is longer than the statement timeout, so that a slow statement
  is stopped cleanly by the server first.

Each expiry surfaces as the DBAPI's ``OperationalError``: the connection is dropped from the
pool, and the server answers 503 as for a refused connection, which clients wait out.
Migrations run without the statement and read bounds (an index over a large table may take
longer).
"""

from __future__ import annotations

import math
import time
from typing import Any

from sqlalchemy import Connection, Engine, event
from sqlalchemy.engine import URL, ExceptionContext

from frazil.config import DatabaseTimeouts

#: A statement's start on a SQLite connection, read by its progress handler (0: none runs).
_STARTED = "frazil.started"
#: SQLite calls the progress handler every this many virtual-machine steps.
_SQLITE_STEPS = 10_000


def engine_options(
    backend: str, url: URL, t: DatabaseTimeouts | None, *, bounded: bool = True
) -> dict[str, Any]:
    """``create_engine`` keywords for ``t`` (``connect_args`` to be merged by the caller);
    only the connect timeout unless ``bounded``."""
    if t is None or backend == "sqlite":
        return {"connect_args": {"timeout": t.statement}} if t and bounded else {}
    connect = max(2, math.ceil(t.connect)) if backend == "postgresql" else t.connect
    if not bounded:
        return {"pool_timeout": t.connect, "connect_args": {"connect_timeout": connect}}
    if backend == "postgresql":
        statement = f"-c statement_timeout={int(t.statement * 1000)}"
        given = url.query.get("options")
        args: dict[str, Any] = {
            "connect_timeout": connect,
            "options": f"{given} {statement}" if isinstance(given, str) else statement,
            "keepalives": 1,
            "keepalives_idle": max(1, int(t.read // 3)),
            "keepalives_interval": max(1, int(t.read // 9)),
            "keepalives_count": 3,
            "tcp_user_timeout": int(t.read * 1000),
        }
    else:
        args = {"connect_timeout": connect, "read_timeout": t.read, "write_timeout": t.read}
    return {"pool_timeout": t.connect, "connect_args": args}


def install(engine: Engine, backend: str, t: DatabaseTimeouts | None) -> None:
    """The parts of ``t`` that need the engine's events."""
    if t is None:
        return
    if backend == "sqlite":
        _sqlite_statements(engine, t.statement)
    elif backend == "postgresql":
        _psycopg_reads(engine, t.read)
    else:
        _mysql_statements(engine, t.statement)


def _sqlite_statements(engine: Engine, seconds: float) -> None:
    def connect(dbapi_connection: Any, record: Any) -> None:
        started = record.info[_STARTED] = [0.0]
        dbapi_connection.execute(f"PRAGMA busy_timeout={int(seconds * 1000)}")

        def overdue() -> bool:
            return started[0] > 0 and time.monotonic() - started[0] > seconds

        dbapi_connection.set_progress_handler(overdue, _SQLITE_STEPS)

    def before(conn: Connection, *_: Any) -> None:
        started = conn.info.get(_STARTED)
        if started is not None:
            started[0] = time.monotonic()

    def after(conn: Connection, *_: Any) -> None:
        started = conn.info.get(_STARTED)
        if started is not None:
            started[0] = 0.0

    def failed(context: ExceptionContext) -> None:
        if context.connection is not None:
            after(context.connection)

    # after the engine's own "connect" listener, which sets the default busy timeout
    event.listen(engine, "connect", connect)
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    event.listen(engine, "handle_error", failed)


def _mysql_statements(engine: Engine, seconds: float) -> None:
    def connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        if "mariadb" in dbapi_connection.get_server_info().lower():
            cursor.execute(f"SET SESSION max_statement_time = {seconds:.3f}")
        else:  # MySQL bounds only SELECT statements, in milliseconds
            cursor.execute(f"SET SESSION max_execution_time = {int(seconds * 1000)}")
        cursor.close()

    event.listen(engine, "connect", connect)


def _psycopg_reads(engine: Engine, seconds: float) -> None:
    from frazil.store.psycopg_timed import timed_connection  # noqa: PLC0415 - PostgreSQL only

    connection_class = timed_connection(seconds)

    def connect(_dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        return connection_class.connect(*cargs, **cparams)

    event.listen(engine, "do_connect", connect)
