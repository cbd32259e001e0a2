"""One database, three backends: engines, transactions, retries and migrations.

SQLite (the embedded default) runs in WAL mode with a busy timeout and foreign keys on; every
write transaction starts with ``BEGIN IMMEDIATE`` so that two writers queue for the lock
instead of failing when one upgrades. PostgreSQL and MariaDB use ``READ COMMITTED`` and
``FOR UPDATE SKIP LOCKED`` where tasks are handed out.

``Database.transaction(fn)`` runs ``fn(conn)`` in one transaction and runs it again (a
bounded number of times) when the backend reports a deadlock, a serialization failure or a
busy lock: the services are written so that a retry is safe.

The database's errors do not leave ``Database``: ``translated()`` turns each one into
Frazil's (``DatabaseUnavailable``, ``StatementFailed``, ``ConstraintViolated``), with the
original as ``__cause__``. Inside a transaction the statements still raise SQLAlchemy's own
errors, which ``transaction`` needs to tell a deadlock (run again) from the rest.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import ExceptionContext, make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.pool import NullPool

from frazil.config import DatabaseTimeouts
from frazil.errors import (
    BadValue,
    ConstraintViolated,
    DatabaseUnavailable,
    StatementFailed,
    StoreError,
)
from frazil.store import timeouts as bounds

log = logging.getLogger(__name__)

T = TypeVar("T")

MIGRATIONS = Path(__file__).parent / "migrations"

DEFAULT_TIMEOUTS = DatabaseTimeouts()

#: Backend error codes that mean "try the transaction again".
_PG_RETRY = {"40001", "40P01", "55P03"}
_MYSQL_RETRY = {1205, 1213}

#: What a statement raises inside ``transaction``, ``begin`` or ``read``, before it is
#: translated on the way out: code there that catches broadly lets it through, so that the
#: transaction runs again or gives up whole.
UntranslatedError = DBAPIError

#: The database's errors and Frazil's for them; the first match wins. A lost connection is
#: ``DatabaseUnavailable`` whatever its class. Anything else of SQLAlchemy's (``NoResultFound``,
#: a closed result) is a mistake in the calling code and is not translated.
_TRANSLATIONS: list[tuple[type[SQLAlchemyError], Callable[[str], Exception]]] = [
    (OperationalError, DatabaseUnavailable),  # refused, lost, timed out, locked, deadlocked
    (InterfaceError, DatabaseUnavailable),  # the connection is closed
    (PoolTimeout, DatabaseUnavailable),  # no free pooled connection within the connect timeout
    (IntegrityError, ConstraintViolated),
    (DBAPIError, StatementFailed),  # a statement the database cannot run
]


#: Set in a connection's ``info`` by a change that made tasks ready (see ``mark_ready``).
READY = "frazil.ready"


def locks_rows(conn: Connection) -> bool:
    """Whether the backend of ``conn`` locks rows (``SELECT ... FOR UPDATE``); SQLite does
    not, and needs not: a write transaction holds the whole database."""
    return conn.dialect.name != "sqlite"


def mark_ready(conn: Connection, count: int = 1) -> None:
    """Note that this transaction makes ``count`` tasks ready: waiting pilots are woken at
    commit, unless the transaction hands them out itself (``mark_taken``)."""
    conn.info[READY] = conn.info.get(READY, 0) + count


def mark_taken(conn: Connection, count: int) -> None:
    """This transaction handed out ``count`` ready tasks: nobody needs waking for them."""
    if READY in conn.info:
        conn.info[READY] = max(0, conn.info[READY] - count)


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600), in a directory made 0700 if it is
    new; an existing file is left as it is. SQLite gives its journal, WAL and shared-memory
    files the database file's mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        fd = os.open(
            path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600
        )
    except FileExistsError:
        return
    os.close(fd)


def _transient(exc: DBAPIError) -> bool:
    orig = exc.orig
    code = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if code in _PG_RETRY:
        return True
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL_RETRY:
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's first line (SQLAlchemy's own text would add the statement)."""
    detail = exc.orig if isinstance(exc, DBAPIError) else exc
    return (str(detail).strip().splitlines() or [type(detail).__name__])[0]


@contextmanager
def translated() -> Iterator[None]:
    """Raise Frazil's error for a database error raised inside, the original as its cause."""
    try:
        yield
    except SQLAlchemyError as exc:
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            raise DatabaseUnavailable(_reason(exc)) from exc
        for foreign, ours in _TRANSLATIONS:
            if isinstance(exc, foreign):
                raise ours(_reason(exc)) from exc
        raise


class Database:
    """A connection pool to one database, with its dialect's quirks handled.

    ``timeouts`` bound how long the database may take to connect, to run a statement and to
    answer at all (``frazil.store.timeouts``); past them a call raises ``DatabaseUnavailable``
    (503 from the server) instead of hanging. None: no bounds.

    Its methods raise Frazil's errors for the database's, not SQLAlchemy's (``translated``).
    """

    def __init__(
        self, url: str, *, pool_size: int = 5, echo: bool = False,
        timeouts: DatabaseTimeouts | None = DEFAULT_TIMEOUTS,
    ) -> None:  # fmt: skip
        try:
            self.url = make_url(url)
        except ArgumentError as exc:  # its text, unlike the URL's, holds no password
            raise StoreError(f"not a database URL: {exc}") from exc
        self.backend = self.url.get_backend_name()
        if self.backend not in ("sqlite", "postgresql", "mysql", "mariadb"):
            raise StoreError(f"unsupported database {self.backend!r} in {self.url!r}")
        self.timeouts = timeouts
        try:
            self.engine = self._create_engine(pool_size, echo)
        except ArgumentError as exc:  # an unknown driver or option
            raise StoreError(f"cannot use the database {self.url!r}: {exc}") from exc
        database = self.url.database or ""
        file_db = self.backend == "sqlite" and database not in ("", ":memory:")
        self._writer_lock = f"{database}-writers.lock" if file_db else None
        self._ready_listeners: list[Callable[[], None]] = []

    @property
    def sqlite_path(self) -> Path | None:
        """The database file, for SQLite on a file; else ``None``."""
        database = self.url.database or ""
        if self.backend != "sqlite" or database in ("", ":memory:"):
            return None
        return Path(database).absolute()

    def sqlite_files(self) -> list[Path]:
        """The SQLite database file and its companions (journal, WAL, shared memory, the
        writers' lock), whether or not they exist now; none for other backends."""
        path = self.sqlite_path
        suffixes = ("", "-journal", "-wal", "-shm", "-writers.lock")
        return [] if path is None else [Path(f"{path}{suffix}") for suffix in suffixes]

    def on_ready(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after each commit that may have made tasks ready to claim."""
        self._ready_listeners.append(listener)

    def _committed(self, ready: bool) -> None:
        if ready:
            for listener in self._ready_listeners:
                listener()

    def _create_engine(self, pool_size: int, echo: bool, *, bounded: bool = True) -> Engine:
        engine = self._new_engine(pool_size, echo, bounded)
        event.listen(engine, "handle_error", _bad_value)
        if bounded:
            bounds.install(engine, self.backend, self.timeouts)
        return engine

    def _new_engine(self, pool_size: int, echo: bool, bounded: bool) -> Engine:
        extra = bounds.engine_options(self.backend, self.url, self.timeouts, bounded=bounded)
        if self.backend == "sqlite":
            database = self.url.database or ""
            if database and database != ":memory:":
                private_file(Path(database))
            connect_args = {"timeout": 60, "check_same_thread": False}
            engine = create_engine(
                self.url,
                echo=echo,
                poolclass=NullPool if database in ("", ":memory:") else None,
                connect_args={**connect_args, **extra.pop("connect_args", {})},
            )
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        options: dict[str, Any] = {"pool_pre_ping": True, "pool_size": pool_size, "echo": echo}
        if self.backend in ("mysql", "mariadb"):
            options["isolation_level"] = "READ COMMITTED"
        return create_engine(self.url, **options, **extra)

    @property
    def skip_locked(self) -> bool:
        """True when the backend can hand out rows with ``FOR UPDATE SKIP LOCKED``."""
        return self.backend != "sqlite"

    @contextmanager
    def _writers(self) -> Iterator[None]:
        """SQLite: queue our writers on a kernel lock, which wakes the next one the moment the
        lock is free, instead of SQLite's busy handler, which sleeps and retries."""
        if self._writer_lock is None:
            yield
            return
        fd = os.open(self._writer_lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction (committed on success, rolled back on error)."""
        with translated(), self._begin() as conn:
            yield conn

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        with self._writers(), self.engine.begin() as conn:
            conn.info.pop(READY, None)
            yield conn
            ready = conn.info.pop(READY, 0) > 0
        self._committed(ready)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read-only transaction (on SQLite it takes no write lock)."""
        with translated(), self.engine.connect() as raw:
            conn = raw.execution_options(frazil_readonly=True)
            with conn.begin():
                yield conn

    def transaction(self, fn: Callable[[Connection], T], *, attempts: int = 8) -> T:
        """Run ``fn`` in one write transaction, again on deadlocks and busy locks.

        ``fn`` sees SQLAlchemy's errors; the caller sees Frazil's, once the last attempt
        failed or at once for an error that running again would not cure."""
        delay = 0.005
        with translated():
            for attempt in range(1, attempts + 1):
                try:
                    with self._begin() as conn:
                        return fn(conn)
                except DBAPIError as exc:
                    if attempt == attempts or not _transient(exc):
                        raise
                    log.debug("transient database error (attempt %d): %s", attempt, exc.orig)
                    time.sleep(delay)
                    delay = min(delay * 2, 0.5)
        raise AssertionError("unreachable")

    def dispose(self) -> None:
        """Close every pooled connection (before a fork, or at exit)."""
        self.engine.dispose()

    # -- schema -----------------------------------------------------------------------------

    def alembic_config(self) -> Any:
        """Alembic's configuration for this database (no alembic.ini is needed)."""
        from alembic.config import Config  # noqa: PLC0415 - only migrations need alembic

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        return cfg

    def migrate(self, revision: str = "head") -> None:
        """Create the schema or bring it up to ``revision``."""
        from alembic import command  # noqa: PLC0415 - only migrations need alembic

        cfg = self.alembic_config()
        # no statement or read bound: an index over a large table takes the time it takes
        engine = self._create_engine(1, False, bounded=False)
        try:
            with translated(), self._writers(), engine.begin() as conn:
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        except DatabaseUnavailable as exc:
            raise StoreError(f"cannot migrate {self.url!r}: {exc.reason}") from exc
        finally:
            engine.dispose()

    def current_revision(self) -> str | None:
        """The schema revision the database is at, or None before ``migrate``."""
        with translated(), self.engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return None if value is None else str(value)

    @staticmethod
    def head_revision() -> str:
        """The newest schema revision this version of Frazil knows."""
        names = sorted(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("*.py"))
        return names[-1]

    def check_schema(self) -> None:
        """Raise ``StoreError`` unless the database is reachable and at the newest schema."""
        try:
            current = self.current_revision()
        except DatabaseUnavailable as exc:
            raise StoreError(f"cannot reach the database {self.url!r}: {exc.reason}") from exc
        if current is None:
            raise StoreError(f"the database {self.url!r} has no schema yet: run `frazil init`")
        if current != self.head_revision():
            raise StoreError(
                f"the database {self.url!r} is at schema {current}, this Frazil needs "
                f"{self.head_revision()}: run `frazil init`"
            )


def _bad_value(context: ExceptionContext) -> BaseException | None:
    """A value the backend cannot hold is the caller's mistake: say so, without the SQL.

    Integers past 64 bits (or 32 on some columns), text too long for its column, NUL
    characters (PostgreSQL) and unencodable text fail differently on each backend.
    """
    orig = context.original_exception
    if isinstance(context.sqlalchemy_exception, DataError) or isinstance(
        orig, OverflowError | UnicodeError
    ):
        reason = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        return BadValue(f"a value the database cannot hold: {reason}")
    return None


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite would otherwise defer it).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    readonly = conn.get_execution_options().get("frazil_readonly", False)
    conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")
