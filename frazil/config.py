"""Frazil's own settings, resolved once: its home, its database, its server and its client.

Sources, strongest first: environment variables (``FRAZIL_HOME``, ``FRAZIL_DB_URL``,
``FRAZIL_URL``, ``FRAZIL_TOKEN``), then ``$FRAZIL_HOME/frazil.toml``, then defaults
(``~/.frazil``, SQLite at ``$FRAZIL_HOME/frazil.db``, no server).

``frazil.toml``::

    db_url = "postgresql+psycopg://frazil@db.example.org/frazil"

    [server]                      # frazil server
    host = "127.0.0.1"
    port = 8800
    notify_webhook = "https://chat.example.org/hooks/frazil"   # POSTed {"text": ...}
    notify_command = ["mail", "-s", "frazil", "admin@example.org"]  # message on stdin
    notify_after = 5              # crashes in a row before the administrator hears of it
    max_body_bytes = 16777216     # larger request bodies are refused (413)

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

    [client]                      # where the CLI sends its requests (else: the database)
    url = "http://frazil.example.org:8800"
    token = "frz_..."
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
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
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    url: str | None = None  # a server to talk to instead of the database
    token: str | None = None

    @property
    def is_default_sqlite(self) -> bool:
        """True when the database is the embedded default file."""
        return self.db_url == default_db_url(self.home)


def default_db_url(home: Path) -> str:
    """The embedded default: a SQLite file in Frazil's home."""
    return f"sqlite:///{home / 'frazil.db'}"


def _table(values: Mapping[str, Any], key: str, known: set[str], path: Path) -> dict[str, Any]:
    table = values.get(key, {})
    if not isinstance(table, dict):
        raise SettingsError(f"{path}: [{key}] must be a table")
    unknown = set(table) - known
    if unknown:
        raise SettingsError(f"{path}: unknown setting(s) in [{key}]: {', '.join(sorted(unknown))}")
    return table


def _server(values: Mapping[str, Any], path: Path) -> ServerSettings:
    known = {"host", "port", "notify_webhook", "notify_command", "notify_after", "max_body_bytes"}
    t = _table(values, "server", known, path)
    command = t.get("notify_command", [])
    if not isinstance(command, list) or not all(isinstance(c, str) for c in command):
        raise SettingsError(f"{path}: server.notify_command must be a list of strings (argv)")
    port = t.get("port", 8800)
    if not isinstance(port, int) or not 0 <= port < 65536:
        raise SettingsError(f"{path}: server.port must be a port number")
    max_body = t.get("max_body_bytes", ServerSettings.max_body_bytes)
    if isinstance(max_body, bool) or not isinstance(max_body, int) or max_body < 1:
        raise SettingsError(f"{path}: server.max_body_bytes must be a positive integer")
    return ServerSettings(
        host=str(t.get("host", "127.0.0.1")),
        port=port,
        notify_webhook=t.get("notify_webhook"),
        notify_command=tuple(command),
        notify_after=int(t.get("notify_after", 5)),
        max_body_bytes=max_body,
    )


def _positive(table: Mapping[str, Any], key: str, default: Any, section: str, path: Path) -> Any:
    """A positive number from ``table`` (an integer where ``default`` is one)."""
    value = table.get(key, default)
    kinds = (int,) if isinstance(default, int) else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        what = "a positive integer" if isinstance(default, int) else "a positive number"
        raise SettingsError(f"{path}: {section}.{key} must be {what}")
    return value


def _positives(values: Mapping[str, Any], section: str, kind: type[T], path: Path) -> T:
    """A ``[section]`` of positive numbers, read into the dataclass ``kind``."""
    defaults = kind()
    known = set(kind.__dataclass_fields__)  # type: ignore[attr-defined]
    t = _table(values, section, known, path)
    return kind(**{k: _positive(t, k, getattr(defaults, k), section, path) for k in sorted(known)})


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("FRAZIL_HOME") or Path.home() / ".frazil").expanduser()
    values: dict[str, Any] = {}
    path = home / "frazil.toml"
    if path.exists():
        try:
            values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        unknown = set(values) - {"db_url", "server", "validation", "quota", "client"}
        if unknown:
            raise SettingsError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    db_url = env.get("FRAZIL_DB_URL") or values.get("db_url") or default_db_url(home)
    if not isinstance(db_url, str):
        raise SettingsError(f"{path}: db_url must be a string")
    client = _table(values, "client", {"url", "token"}, path)
    return Settings(
        home=home,
        db_url=db_url,
        server=_server(values, path),
        validation=_positives(values, "validation", ValidationSettings, path),
        quota=_positives(values, "quota", QuotaSettings, path),
        url=env.get("FRAZIL_URL") or client.get("url"),
        token=env.get("FRAZIL_TOKEN") or client.get("token"),
    )
