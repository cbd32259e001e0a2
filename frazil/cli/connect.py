"""Where the command line sends its requests: a server, or the embedded database.

Strongest first:

1. ``--server NAME``: a server of the credentials file (``frazil login URL --name NAME``);
2. ``FRAZIL_URL`` and ``FRAZIL_TOKEN``, for scripts;
3. the credentials file's default server (the last ``frazil login``, unless told otherwise);
4. ``[client] url`` and ``token`` in ``$FRAZIL_HOME/frazil.toml``;
5. else the database of Frazil's settings, served in this process as its local
   administrator (``inprocess``), which must exist already.

Every user command goes through ``frazil.client.Client`` either way.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from frazil.cli import credentials
from frazil.errors import SettingsError

if TYPE_CHECKING:
    from frazil.client import Client

#: How long a command rides out a server that does not answer (a restart) before it gives up.
RETRY_SECONDS = 15.0


@dataclass(frozen=True)
class Remote:
    """A server over HTTP."""

    url: str
    token: str
    source: str  # where it was named, for messages


_chosen: list[str | None] = [None]


def choose(server: str | None) -> None:
    """The ``--server`` given to this command line (the root command sets it)."""
    _chosen[0] = server


def remote(server: str | None, environ: Mapping[str, str] | None = None) -> Remote | None:
    """The server the command line talks to (None: the embedded database)."""
    env = os.environ if environ is None else environ
    file = credentials.path(env)
    creds = credentials.load(file)
    if server is not None:
        found = creds.get(server)
        if found is None:
            known = ", ".join(sorted(creds.servers)) or "none"
            raise SettingsError(
                f"no server {server!r} in {file} (servers: {known}); "
                f"log in first: frazil login URL --name {server}"
            )
        return Remote(found.url, found.token, f"server {server!r} of {file}")
    url, token = env.get("FRAZIL_URL"), env.get("FRAZIL_TOKEN")
    if url or token:
        if not (url and token):
            missing = "FRAZIL_TOKEN" if url else "FRAZIL_URL"
            raise SettingsError(f"FRAZIL_URL and FRAZIL_TOKEN go together: {missing} is not set")
        return Remote(url, token, "FRAZIL_URL")
    found = creds.get(None)
    if found is not None:
        return Remote(found.url, found.token, f"server {found.name!r} of {file}")
    from frazil.config import load_settings  # noqa: PLC0415 - only without credentials

    settings = load_settings(env)
    if settings.url and settings.token:
        return Remote(settings.url, settings.token, f"[client] of {settings.home / 'frazil.toml'}")
    if settings.url or settings.token:
        raise SettingsError(f"{settings.home / 'frazil.toml'}: [client] needs both url and token")
    return None


@contextmanager
def client() -> Iterator[Client]:
    """A client for this command line's target, closed at the end."""
    target = remote(_chosen[0])
    if target is None:
        from frazil.cli.inprocess import local_client  # noqa: PLC0415
        from frazil.config import load_settings  # noqa: PLC0415

        http = local_client(load_settings())
    else:
        from frazil.client import Client  # noqa: PLC0415

        http = Client(target.url, target.token, retry_for=RETRY_SECONDS)
    try:
        yield http
    finally:
        http.close()
