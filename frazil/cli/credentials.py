"""The servers a user logged in to: their addresses and tokens, in one private file.

``credentials.toml`` lives in ``$FRAZIL_HOME`` when that is set, else in the user's config
directory (``$XDG_CONFIG_HOME/frazil``, by default ``~/.config/frazil``); it is written
0600 in a 0700 directory, by replacing the whole file, so that a crash never leaves half of
it::

    default = "prod"

    [servers.prod]
    url = "https://frazil.example.org"
    token = "frz_..."

Standard library only: the command line reads it before anything else.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from frazil.errors import SettingsError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\Z")
FILE = "credentials.toml"


@dataclass(frozen=True)
class Server:
    """A server the user logged in to."""

    name: str
    url: str
    token: str


@dataclass(frozen=True)
class Credentials:
    """Every server in the file, and which one commands use when none is named."""

    servers: dict[str, Server] = field(default_factory=dict)
    default: str | None = None

    def get(self, name: str | None) -> Server | None:
        """The server ``name`` (the default when None); None when there is none."""
        key = self.default if name is None else name
        return None if key is None else self.servers.get(key)


def path(environ: Mapping[str, str] | None = None) -> Path:
    """Where the credentials are kept."""
    env = os.environ if environ is None else environ
    if env.get("FRAZIL_HOME"):
        return Path(env["FRAZIL_HOME"]).expanduser() / FILE
    config = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config).expanduser() / "frazil" / FILE


def load(file: Path) -> Credentials:
    """The credentials in ``file`` (none when it does not exist)."""
    try:
        values = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Credentials()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{file}: {exc}") from exc
    servers: dict[str, Server] = {}
    table = values.get("servers", {})
    if not isinstance(table, dict):
        raise SettingsError(f"{file}: [servers] must be a table")
    for name, entry in table.items():
        if not (
            isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("url", "token"))
        ):
            raise SettingsError(f"{file}: [servers.{name}] needs url and token (strings)")
        servers[name] = Server(name, entry["url"], entry["token"])
    default = values.get("default")
    if default is not None and default not in servers:
        raise SettingsError(f"{file}: default = {default!r} names no [servers.{default}]")
    return Credentials(servers, default)


def _quoted(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(text, ensure_ascii=False)


def save(file: Path, credentials: Credentials) -> None:
    """Write ``credentials`` to ``file`` (0600), replacing it at once."""
    lines = []
    if credentials.default is not None:
        lines += [f"default = {_quoted(credentials.default)}", ""]
    for s in credentials.servers.values():
        lines += [f"[servers.{_quoted(s.name)}]", f"url = {_quoted(s.url)}",
                  f"token = {_quoted(s.token)}", ""]  # fmt: skip
    file.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{FILE}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:  # mkstemp: 0600 already
            f.write("\n".join(lines))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def check_name(name: str) -> str:
    """A server's name: letters, digits, ``_``, ``.`` and ``-``."""
    if not NAME.match(name):
        raise SettingsError(f"a server's name is letters, digits, '_', '.' or '-'; got {name!r}")
    return name
