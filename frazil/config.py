"""Frazil's own settings, resolved once: its home, its database, its server and its client.

Sources, strongest first: environment variables (``FRAZIL_HOME``, ``FRAZIL_DB_URL``,
``FRAZIL_URL``, ``FRAZIL_TOKEN``), then ``$FRAZIL_HOME/frazil.toml``, then defaults
(``~/.frazil``, SQLite at ``$FRAZIL_HOME/frazil.db``, no server).

``frazil.toml``::

    db_url = "postgresql+psycopg://frazil@db.example.org/frazil"

    [database]                    # how long the database may take (seconds); then 503
    connect_timeout = 10          # opening a connection (and waiting for a pooled one)
    statement_timeout = 30        # one statement, stopped by the server (SQLite: locks too)
    read_timeout = 45             # any answer on an open connection (a partition, a stop)

    [server]                      # frazil server
    host = "127.0.0.1"
    port = 8800
    notify_webhook = "https://chat.example.org/hooks/frazil"   # POSTed {"text": ...}
    notify_command = ["mail", "-s", "frazil", "admin@example.org"]  # message on stdin
    notify_after = 5              # crashes in a row before the administrator hears of it
    max_body_bytes = 16777216     # larger request bodies are refused (413)
    # where the collector may delete temporary files (none: it deletes nothing); absolute,
    # resolved once, and none may hold Frazil's home or its SQLite database
    storage_roots = ["/data/sim/tmp"]
    max_key_body_bytes = 4194304  # the same for requests with a pilot's key (checked after)
    max_concurrency = 4096        # connections and requests at once; past it: 503 (retried)
    max_report_stats = 1000       # statistics in one pilot report; more: 413 naming the cap
    max_report_files = 1000       # files in one pilot report; more: 413 naming the cap
    access_log = false            # a log line per request (costs more than a pilot's call)
    blob_dir = "/srv/frazil/blobs"  # files uploaded with configs (default: $FRAZIL_HOME/blobs)
    max_blob_bytes = 8388608      # one uploaded file (its base64 must fit max_body_bytes)
    max_upload_bytes = 67108864   # the uploaded files of one submission together
    log_dir = "/var/lib/frazil/logs"  # attempts' logs, whole (default: $FRAZIL_HOME/logs)
    max_log_bytes = 33554432      # one log at most; a pilot sends head and tail of more

    [validation]                  # the budget of one config's check (submit, edit, set-jobs)
    cpu_seconds = 10              # CPU time; a config whose check needs more is rejected
    memory_mb = 512               # memory the check may add
    wall_seconds = 30             # the check is killed after this long, whatever its CPU time
    jobs_seconds = 1              # of the CPU time: checking the jobs between the first and
                                  # the last (then a random sample of them)
    max_tasks = 1000              # per config
    max_modules = 5000
    max_expressions = 50000
    concurrent = 2                # checks at once; more wait for their turn

    [quota]                       # caps on what one submitter may ask for (the owner of a
                                  # dataset: its token's name); `frazil quota set` overrides
    dataset_jobs = 1000000        # jobs of one dataset
    dataset_tasks = 5000000       # tasks of one dataset (jobs x tasks per job)
    jobs = 2000000                # jobs not yet complete, all of a submitter's datasets
    tasks = 10000000              # tasks of those jobs

    [client]                      # the server user commands speak to (frazil.cli.connect)
    url = "http://frazil.example.org:8800"
    token = "frz_..."
"""

from __future__ import annotations

import math
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from frazil.errors import SettingsError

T = TypeVar("T")


@dataclass(frozen=True)
class ServerSettings:
    """How ``frazil server`` listens and whom it tells about crashing daemons."""

    host: str = "127.0.0.1"
    port: int = 8800
    notify_webhook: str | None = None
    notify_command: tuple[str, ...] = ()
    notify_after: int = 5
    max_body_bytes: int = 16 * 1024 * 1024
    #: Directories under which the temporary-file collector may delete (absolute, resolved).
    storage_roots: tuple[Path, ...] = ()
    #: a body that carries a pilot's key is read before the key is checked: a smaller limit
    max_key_body_bytes: int = 4 * 1024 * 1024
    #: uvicorn's ``limit_concurrency``: open connections and running requests; past it, 503
    max_concurrency: int = 4096
    #: statistics and files one pilot report may carry (each is a row)
    max_report_stats: int = 1000
    max_report_files: int = 1000
    #: a log line per request (uvicorn's access log)
    access_log: bool = False
    #: where files uploaded with configs are kept (None: the server keeps none)
    blob_dir: Path | None = None
    #: one uploaded file, and the uploaded files of one submission together
    max_blob_bytes: int = 8 * 1024 * 1024
    max_upload_bytes: int = 64 * 1024 * 1024
    #: where attempts' logs are kept whole (``frazil.store.log_files``); None: the default,
    #: ``$FRAZIL_HOME/logs`` once the settings are loaded
    log_dir: Path | None = None
    #: the most one log may hold; a pilot sends the head and the tail of a longer one
    max_log_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long the database may take, in seconds, before a request gives up with 503
    (see ``frazil.store.timeouts``). ``read`` is longer than ``statement``, so that the
    server stops a slow statement before we stop waiting for it."""

    connect: float = 10.0
    statement: float = 30.0
    read: float = 45.0


@dataclass(frozen=True)
class ValidationSettings:
    """What checking one config may cost; each check runs in a child process of its own."""

    cpu_seconds: float = 10.0
    memory_mb: int = 512
    wall_seconds: float = 30.0
    jobs_seconds: float = 1.0
    max_tasks: int = 1000
    max_modules: int = 5000
    max_expressions: int = 50_000
    concurrent: int = 2


@dataclass(frozen=True)
class QuotaSettings:
    """The caps every submitter has unless an administrator set others for them."""

    dataset_jobs: int = 1_000_000
    dataset_tasks: int = 5_000_000
    jobs: int = 2_000_000
    tasks: int = 10_000_000


@dataclass(frozen=True)
class Settings:
    """Resolved settings."""

    home: Path
    db_url: str
    server: ServerSettings = field(default_factory=ServerSettings)
    database: DatabaseTimeouts = field(default_factory=DatabaseTimeouts)
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    url: str | None = None  # a server for the user commands (``frazil.cli.connect``)
    token: str | None = None

    @property
    def is_default_sqlite(self) -> bool:
        """True when the database is the embedded default file."""
        return self.db_url == default_db_url(self.home)


def frazil_home(environ: Mapping[str, str] | None = None) -> Path:
    """Frazil's home: ``$FRAZIL_HOME``, else ``~/.frazil`` (private to its owner, 0700)."""
    env = os.environ if environ is None else environ
    return Path(env.get("FRAZIL_HOME") or Path.home() / ".frazil").expanduser()


def default_db_url(home: Path) -> str:
    """The embedded default: a SQLite file in Frazil's home."""
    return f"sqlite:///{home / 'frazil.db'}"


def sqlite_file(db_url: str) -> list[Path]:
    """The database file of a SQLite URL (none for other backends or in memory)."""
    prefix = "sqlite:///"
    if not db_url.startswith(prefix) or db_url[len(prefix) :] in ("", ":memory:"):
        return []
    return [Path(db_url[len(prefix) :].split("?", 1)[0])]


def _table(values: Mapping[str, Any], key: str, known: set[str], path: Path) -> dict[str, Any]:
    table = values.get(key, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [{key}] must be a table")
    unknown = set(table) - known
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) in [{key}]: {', '.join(sorted(unknown))}")
    return table


def _storage_roots(value: Any, path: Path, keep_out: Sequence[Path]) -> tuple[Path, ...]:
    """The collector's storage roots: absolute directories, resolved, holding none of
    ``keep_out`` (Frazil's home and database)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SettingsError(f"{path}: server.storage_roots must be a list of directories")
    roots = []
    for text in value:
        if not text.startswith("/"):
            raise SettingsError(f"{path}: server.storage_roots: {text!r} is not an absolute path")
        root = Path(os.path.realpath(text))
        if root == Path("/"):
            raise SettingsError(f"{path}: server.storage_roots: {text!r} is the whole file system")
        for kept in keep_out:
            if Path(os.path.realpath(kept)).is_relative_to(root):
                raise SettingsError(
                    f"{path}: server.storage_roots: {text!r} holds {str(kept)!r}, "
                    "which the collector must never touch"
                )
        roots.append(root)
    return tuple(roots)


def _server(
    values: Mapping[str, Any], path: Path, keep_out: Sequence[Path], home: Path
) -> ServerSettings:
    known = {
        "host", "port", "notify_webhook", "notify_command", "notify_after", "max_body_bytes",
        "storage_roots", "max_key_body_bytes", "max_concurrency", "max_report_stats",
        "max_report_files", "access_log", "blob_dir", "max_blob_bytes", "max_upload_bytes",
        "log_dir", "max_log_bytes",
    }  # fmt: skip
    t = _table(values, "server", known, path)
    log_dir = t.get("log_dir")
    if log_dir is not None and (not isinstance(log_dir, str) or not log_dir.strip()):
        raise SettingsError(f"{path}: server.log_dir must be a directory, not {log_dir!r}")
    command = t.get("notify_command", [])
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise SettingsError(f"{path}: server.notify_command must be a list of strings (argv)")
    access_log = t.get("access_log", False)
    if not isinstance(access_log, bool):
        raise SettingsError(f"{path}: server.access_log must be true or false, not {access_log!r}")
    blob_dir = t.get("blob_dir", str(path.parent / "blobs"))
    if not isinstance(blob_dir, str) or not blob_dir:
        raise SettingsError(f"{path}: server.blob_dir must be a directory")
    max_body = _positive(t, "max_body_bytes", ServerSettings.max_body_bytes, "server", path)
    max_blob = _positive(t, "max_blob_bytes", ServerSettings.max_blob_bytes, "server", path)
    if (max_blob + 2) // 3 * 4 + 1024 > max_body:
        raise SettingsError(
            f"{path}: server.max_blob_bytes ({max_blob}) must fit max_body_bytes ({max_body}) "
            "as base64 (4/3 of it) with room to spare: raise max_body_bytes or lower it"
        )
    port = t.get("port", 8800)
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise SettingsError(f"{path}: server.port must be a port number")
    return ServerSettings(
        host=str(t.get("host", "127.0.0.1")),
        port=port,
        notify_webhook=t.get("notify_webhook"),
        notify_command=tuple(command),
        notify_after=int(t.get("notify_after", 5)),
        max_body_bytes=max_body,
        max_key_body_bytes=_positive(
            t, "max_key_body_bytes", ServerSettings.max_key_body_bytes, "server", path
        ),
        max_concurrency=_positive(
            t, "max_concurrency", ServerSettings.max_concurrency, "server", path
        ),
        storage_roots=_storage_roots(t.get("storage_roots", []), path, keep_out),
        max_report_stats=_positive(
            t, "max_report_stats", ServerSettings.max_report_stats, "server", path
        ),
        max_report_files=_positive(
            t, "max_report_files", ServerSettings.max_report_files, "server", path
        ),
        access_log=access_log,
        blob_dir=Path(blob_dir).expanduser(),
        max_blob_bytes=max_blob,
        max_upload_bytes=_positive(
            t, "max_upload_bytes", ServerSettings.max_upload_bytes, "server", path
        ),
        log_dir=home / Path(log_dir).expanduser() if log_dir else home / "logs",
        max_log_bytes=_positive(t, "max_log_bytes", ServerSettings.max_log_bytes, "server", path),
    )


def _positive(table: Mapping[str, Any], key: str, default: Any, section: str, path: Path) -> Any:
    """A positive number from ``table`` (an integer where ``default`` is one)."""
    value = table.get(key, default)
    kinds = (int,) if isinstance(default, int) else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        what = "a positive integer" if isinstance(default, int) else "a positive number"
        raise SettingsError(f"{path}: {section}.{key} must be {what}, not {value!r}")
    return value


def _positives(values: Mapping[str, Any], section: str, kind: type[T], path: Path) -> T:
    """A ``[section]`` of positive numbers, read into the dataclass ``kind``."""
    defaults = kind()
    known = set(kind.__dataclass_fields__)  # type: ignore[attr-defined]
    t = _table(values, section, known, path)
    return kind(**{k: _positive(t, k, getattr(defaults, k), section, path) for k in sorted(known)})


def _database(values: Mapping[str, Any], path: Path) -> DatabaseTimeouts:
    known = {"connect_timeout", "statement_timeout", "read_timeout"}
    t = _table(values, "database", known, path)
    seconds = {}
    for key in sorted(known):
        value = t.get(key, getattr(DatabaseTimeouts, key.removesuffix("_timeout")))
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < math.inf
        ):
            raise SettingsError(f"{path}: database.{key} must be a positive number of seconds")
        seconds[key.removesuffix("_timeout")] = float(value)
    timeouts = DatabaseTimeouts(**seconds)
    if timeouts.read <= timeouts.statement:
        raise SettingsError(
            f"{path}: database.read_timeout ({timeouts.read:g} s) must be longer than "
            f"statement_timeout ({timeouts.statement:g} s): the server stops a slow "
            "statement first"
        )
    return timeouts


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    home = frazil_home(env)
    values: dict[str, Any] = {}
    path = home / "frazil.toml"
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        unknown = set(values) - {"db_url", "server", "database", "validation", "quota", "client"}
        if unknown:
            raise SettingsError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    db_url = env.get("FRAZIL_DB_URL") or values.get("db_url") or default_db_url(home)
    if not isinstance(db_url, str):
        raise SettingsError(f"{path}: db_url must be a string")
    client = _table(values, "client", {"url", "token"}, path)
    keep_out = [home, *sqlite_file(db_url)]
    return Settings(
        home=home,
        db_url=db_url,
        server=_server(values, path, keep_out, home),
        database=_database(values, path),
        validation=_positives(values, "validation", ValidationSettings, path),
        quota=_positives(values, "quota", QuotaSettings, path),
        url=env.get("FRAZIL_URL") or client.get("url"),
        token=env.get("FRAZIL_TOKEN") or client.get("token"),
    )
