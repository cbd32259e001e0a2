"""The embedded database served in this process: the server's own application, no socket.

With no server configured, the command line still speaks HTTP through the typed client, to
the same ASGI application that ``frazil server`` runs, over a transport that calls it in
this process. So every command has one implementation, whether the database is a file here
or a server across the world. The caller is the database's local administrator (the owner
of its file); no daemons run (``frazil server`` runs them).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import pwd
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.from_thread
import httpx

from frazil.client import Client
from frazil.config import Settings, sqlite_file
from frazil.errors import FrazilError

ASGIApp = Any  # an ASGI application (FastAPI's, here)

LOCAL_URL = "http://frazil.local"


class NoDatabase(FrazilError):
    """No server is configured and there is no database here."""


class InProcess(httpx.BaseTransport):
    """An httpx transport that hands each request to an ASGI application in this process
    (on an event loop in a thread of its own, as a server would run it)."""

    def __init__(self, app: ASGIApp, *, on_close: Callable[[], None] | None = None) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)  # a 500, as over HTTP
        self._stack = contextlib.ExitStack()
        if on_close is not None:
            self._stack.callback(on_close)
        self._portal = self._stack.enter_context(anyio.from_thread.start_blocking_portal())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()

        async def call() -> httpx.Response:
            inner = httpx.Request(
                request.method, request.url, headers=request.headers, content=body
            )
            answer = await self._asgi.handle_async_request(inner)
            content = await answer.aread()
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=content, request=request
            )

        return self._portal.call(call)

    def close(self) -> None:
        self._stack.close()


def administrator(files: list[Path]) -> str:
    """Who the local administrator is: the owner of the database file (the Unix user for a
    database elsewhere)."""
    for f in files:
        with contextlib.suppress(OSError, KeyError):
            return pwd.getpwuid(os.stat(f).st_uid).pw_name
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "admin"


def local_client(settings: Settings) -> Client:
    """A client of the database of ``settings``, served in this process; it never creates
    the database (``frazil init`` does)."""
    files = sqlite_file(settings.db_url)
    if files and not files[0].exists():
        raise NoDatabase(
            f"no server configured and no database at {files[0]}: `frazil login URL` to use "
            "a server, or `frazil init` to create the database here"
        )
    # the web stack is imported only when a command needs the embedded database
    from frazil.server.app import blob_options, create_app, default_log_dir  # noqa: PLC0415
    from frazil.services.tokens import Caller, Role, Scope  # noqa: PLC0415
    from frazil.store import Database  # noqa: PLC0415
    from frazil.store.log_files import LogFiles  # noqa: PLC0415

    db = Database(settings.db_url, timeouts=settings.database)
    try:
        db.check_schema()
        admin = Caller(administrator(files), Role.ADMIN, Scope.ADMIN)
        logs = LogFiles(
            settings.server.log_dir or default_log_dir(db), settings.server.max_log_bytes
        )
        app = create_app(
            db,
            validation=settings.validation,
            quota=settings.quota,
            local=admin,
            logs=logs,
            **blob_options(settings.server),
        )
        transport = InProcess(app, on_close=db.dispose)
    except BaseException:
        db.dispose()
        raise
    return Client(LOCAL_URL, "local", transport=transport, retry_for=0.0)


__all__ = ["InProcess", "NoDatabase", "local_client"]
