"""Running the server: the API under uvicorn and the daemons under their supervisor.

``serve`` blocks (``frazil server``); ``ServerThread`` runs the same in threads of the
calling process and tells its URL once it listens (``frazil demo`` and the tests).
"""

from __future__ import annotations

import logging
import resource
import subprocess
import threading
import time
from collections.abc import Callable

import httpx
import uvicorn

from frazil.config import QuotaSettings, ServerSettings, ValidationSettings
from frazil.server.app import blob_options, create_app, default_log_dir
from frazil.server.daemons import server_daemons
from frazil.server.supervisor import Supervisor
from frazil.services import validation as check_configs
from frazil.services.attempts import ReportCaps
from frazil.store.db import Database
from frazil.store.log_files import LogFiles

log = logging.getLogger(__name__)


#: Open files the server needs besides one per connection: the database, logs, the daemons.
OPEN_FILES_SPARE = 256


def raise_open_files(needed: int) -> int:
    """Raise this process's soft limit on open files towards ``needed`` (up to the hard
    limit, which only root can raise); returns the new soft limit.

    Past ``max_concurrency`` uvicorn answers 503, but it must be able to accept the
    connection to say so: with too few descriptors, ``accept`` fails and clients hang.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft != resource.RLIM_INFINITY and soft < needed:
        log.warning(
            "open files are limited to %d (hard limit), below the %d that [server] "
            "max_concurrency = %d needs: raise the hard limit (LimitNOFILE=, ulimit -Hn) or "
            "lower max_concurrency", soft, needed, needed - OPEN_FILES_SPARE,
        )  # fmt: skip
    return int(soft)


def report_caps(settings: ServerSettings) -> ReportCaps:
    """What one pilot report may carry, from the settings."""
    return ReportCaps(stats=settings.max_report_stats, files=settings.max_report_files)


def log_files(settings: ServerSettings, db: Database) -> LogFiles:
    """Where the server keeps attempts' logs, and how large each may grow."""
    return LogFiles(settings.log_dir or default_log_dir(db), settings.max_log_bytes)


def notifier(settings: ServerSettings) -> Callable[[str], None] | None:
    """Tell the administrator: POST to a webhook and/or run a command with the message."""
    if not settings.notify_webhook and not settings.notify_command:
        return None

    def notify(message: str) -> None:
        if settings.notify_webhook:
            httpx.post(
                settings.notify_webhook, json={"text": message}, timeout=30
            ).raise_for_status()
        if settings.notify_command:
            subprocess.run(  # noqa: S603 - argv from the administrator's settings, no shell
                list(settings.notify_command), input=message, text=True, timeout=60, check=True
            )

    return notify


def supervisor(db: Database, settings: ServerSettings, *, fast: bool = False) -> Supervisor:
    """The server's daemons under their supervisor, as ``settings`` want them."""
    return Supervisor(
        server_daemons(db, fast=fast, storage_roots=settings.storage_roots),
        notify=notifier(settings),
        notify_after=settings.notify_after,
    )


class ServerThread:
    """The API and its daemons in background threads of this process."""

    def __init__(
        self,
        db: Database,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        settings: ServerSettings | None = None,
        validation: ValidationSettings | None = None,
        quota: QuotaSettings | None = None,
        fast_daemons: bool = False,
        clock: Callable[[], float] = time.time,
        log_level: str = "warning",
    ) -> None:
        self.db = db
        self.settings = settings or ServerSettings()
        self.supervisor = supervisor(db, self.settings, fast=fast_daemons)
        self.app = create_app(
            db, clock=clock, max_body_bytes=self.settings.max_body_bytes,
            max_key_body_bytes=self.settings.max_key_body_bytes,
            report_caps=report_caps(self.settings), validation=validation, quota=quota,
            daemons=self.supervisor.health, logs=log_files(self.settings, db),
            **blob_options(self.settings),
        )  # fmt: skip
        config = uvicorn.Config(
            self.app, host=host, port=port, log_level=log_level,
            access_log=self.settings.access_log, limit_concurrency=self.settings.max_concurrency,
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        self.clock = clock
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        """Where the API listens (once started)."""
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def start(self, timeout: float = 30.0) -> ServerThread:
        """Start serving; returns when the API listens."""
        api = threading.Thread(target=self.server.run, name="frazil-api", daemon=True)
        daemons = threading.Thread(
            target=self.supervisor.run,
            args=(self._stop, self.clock),
            name="frazil-daemons",
            daemon=True,
        )
        self._threads = [api, daemons]
        api.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not api.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.01)
        daemons.start()
        return self

    def stop(self) -> None:
        """Stop the API and the daemons."""
        self._stop.set()
        self.server.should_exit = True
        for t in self._threads:
            t.join(timeout=10)


def serve(
    db: Database,
    settings: ServerSettings,
    *,
    validation: ValidationSettings | None = None,
    quota: QuotaSettings | None = None,
    fast_daemons: bool = False,
) -> None:
    """Run the API and the daemons until interrupted."""
    check_configs.warm_up()  # the config checks' fork server, before any thread starts
    stop = threading.Event()
    daemons = supervisor(db, settings, fast=fast_daemons)
    thread = threading.Thread(target=daemons.run, args=(stop,), name="frazil-daemons", daemon=True)
    thread.start()
    log.info(
        "frazil server on http://%s:%d (database %r; daemons: %s; access log %s)",
        settings.host, settings.port, db.url, ", ".join(d.name for d in daemons.daemons),
        "on" if settings.access_log else "off",
    )  # fmt: skip
    raise_open_files(settings.max_concurrency + OPEN_FILES_SPARE)
    try:
        app = create_app(
            db, max_body_bytes=settings.max_body_bytes,
            max_key_body_bytes=settings.max_key_body_bytes, report_caps=report_caps(settings),
            validation=validation, quota=quota, daemons=daemons.health,
            logs=log_files(settings, db), **blob_options(settings),
        )  # fmt: skip
        # the access log only when asked for: a line per request costs more than a pilot's
        # whole exchange; and no log config of uvicorn's own, so that its records (tracebacks
        # of unhandled errors too) go through frazil.logs like ours
        uvicorn.run(
            app, host=settings.host, port=settings.port, log_level="info",
            access_log=settings.access_log, limit_concurrency=settings.max_concurrency,
            log_config=None,
        )  # fmt: skip
    finally:
        stop.set()
        thread.join(timeout=10)
