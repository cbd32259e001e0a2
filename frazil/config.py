"""Frazil's own settings, resolved once: where its home is and which database it uses.

Sources, strongest first: environment variables (``FRAZIL_HOME``, ``FRAZIL_DB_URL``), then
``$FRAZIL_HOME/frazil.toml``, then defaults (``~/.frazil``, SQLite at
``$FRAZIL_HOME/frazil.db``).

``frazil.toml``::

    db_url = "postgresql+psycopg://frazil@db.example.org/frazil"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from frazil.errors import SettingsError


@dataclass(frozen=True)
class Settings:
    """Resolved settings."""

    home: Path
    db_url: str

    @property
    def is_default_sqlite(self) -> bool:
        """True when the database is the embedded default file."""
        return self.db_url == default_db_url(self.home)


def default_db_url(home: Path) -> str:
    """The embedded default: a SQLite file in Frazil's home."""
    return f"sqlite:///{home / 'frazil.db'}"


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Resolve the settings from ``environ`` (the process environment by default)."""
    env = os.environ if environ is None else environ
    home = Path(env.get("FRAZIL_HOME") or Path.home() / ".frazil").expanduser()
    file_values: dict[str, object] = {}
    path = home / "frazil.toml"
    if path.exists():
        try:
            file_values = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise SettingsError(f"{path}: {exc}") from exc
        unknown = set(file_values) - {"db_url"}
        if unknown:
            raise SettingsError(f"{path}: unknown setting(s): {', '.join(sorted(unknown))}")
    db_url = env.get("FRAZIL_DB_URL") or file_values.get("db_url") or default_db_url(home)
    if not isinstance(db_url, str):
        raise SettingsError(f"{path}: db_url must be a string")
    return Settings(home=home, db_url=db_url)
