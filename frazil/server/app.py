"""The ASGI application: routes, error mapping, OpenAPI description."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from frazil import __version__
from frazil.config import QuotaSettings, ServerSettings, ValidationSettings, frazil_home
from frazil.server import (
    errors,
    metrics,
    routes_admin,
    routes_attempts,
    routes_blobs,
    routes_datasets,
    routes_events,
    routes_people,
    routes_pilots,
    routes_quotas,
    routes_sites,
    routes_tasks,
)
from frazil.server.deps import TOKEN_CACHE_SECONDS, AppState, Reader
from frazil.server.limits import MAX_BODY_BYTES, MAX_KEY_BODY_BYTES, BodyLimit
from frazil.server.protocol import ProtocolCheck
from frazil.services import health as server_health
from frazil.services import permissions, tokens
from frazil.services.attempts import DEFAULT_CAPS, ReportCaps
from frazil.services.blobs import DEFAULT_LIMITS
from frazil.store.blobs import BlobStore
from frazil.store.db import Database
from frazil.store.log_files import LogFiles
from frazil.wire import (
    BlobLimits,
    Caller,
    DaemonHealth,
    Health,
    Permissions,
    RightView,
    encode,
)


def blob_options(settings: ServerSettings) -> dict[str, Any]:
    """``create_app``'s arguments for uploaded files, from the settings."""
    return {
        "blobs": BlobStore(settings.blob_dir) if settings.blob_dir is not None else None,
        "blob_limits": BlobLimits(settings.max_blob_bytes, settings.max_upload_bytes),
    }


def create_app(
    db: Database,
    *,
    clock: Callable[[], float] = time.time,
    token_ttl: float = TOKEN_CACHE_SECONDS,
    max_body_bytes: int = MAX_BODY_BYTES,
    max_key_body_bytes: int = MAX_KEY_BODY_BYTES,
    report_caps: ReportCaps = DEFAULT_CAPS,
    validation: ValidationSettings | None = None,
    quota: QuotaSettings | None = None,
    local: tokens.Caller | None = None,
    daemons: Callable[[], Sequence[DaemonHealth]] | None = None,
    blobs: BlobStore | None = None,
    blob_limits: BlobLimits = DEFAULT_LIMITS,
    logs: LogFiles | None = None,
) -> FastAPI:
    """The API over ``db``; ``clock`` gives the time every service call is stamped with.

    Request bodies are JSON of at most ``max_body_bytes`` from a token's holder (checked
    before the body is read), ``max_key_body_bytes`` with a pilot's key (see ``limits``);
    a pilot's report carries at most ``report_caps`` statistics and files. A config's check
    has the budget of ``validation``; submitters have the caps of ``quota`` unless an
    administrator set others. ``local`` serves the command line in its own process: every
    request with a bearer token is that administrator's (``frazil.cli.inprocess``).
    ``daemons`` says how the server's daemons are, for ``/health`` (none: no daemons here).
    ``blobs`` keeps the files uploaded with configs, within ``blob_limits`` (none: uploads
    are refused).
    Attempts' logs are kept in ``logs`` (by default beside a SQLite database file, else in
    ``$FRAZIL_HOME/logs``).
    """
    app = FastAPI(
        title="Frazil",
        version=__version__,
        description="A lightweight distributed production system for scientific datasets.",
    )
    state = AppState(
        db=db, clock=clock, metrics=metrics.Metrics(db), token_ttl=token_ttl,
        report_caps=report_caps, validation=validation or ValidationSettings(),
        quota=quota or QuotaSettings(), local=local, blobs=blobs, blob_limits=blob_limits,
        logs=logs or LogFiles(default_log_dir(db)),
    )  # fmt: skip
    db.on_ready(state.waker.wake)
    app.state.frazil = state
    errors.install(app)
    app.add_middleware(
        BodyLimit, max_bytes=max_body_bytes, max_key_bytes=max_key_body_bytes,
        check_token=state.token, answer=errors.answer,
    )  # fmt: skip
    app.add_middleware(ProtocolCheck)  # added last: it runs first
    for module in (
        routes_datasets,
        routes_tasks,
        routes_sites,
        routes_attempts,
        routes_pilots,
        routes_admin,
        routes_quotas,
        routes_people,
        routes_blobs,
        metrics,
        routes_events,
    ):
        app.include_router(module.router)
    app.include_router(routes_attempts.pilot)
    app.include_router(routes_blobs.pilot)

    @app.get("/health", tags=["metrics"], response_model=Health, responses={503: {"model": Health}})
    def health() -> Health | JSONResponse:
        """How the server is, for load balancers and monitors (no token needed): the
        database and each daemon. Unhealthy (a database that cannot be reached, a daemon
        that keeps crashing): HTTP 503 with the same body, the reasons in ``problems``."""
        found = server_health.health(state.db, daemons() if daemons is not None else ())
        if found.status != "ok":
            return JSONResponse(encode(found), status_code=503)
        return found

    @app.get("/me", tags=["metrics"])
    def whoami(who: Reader) -> Caller:
        """Whom the server takes the token for: the user (or site), their role, this
        token's scope and name, and the user's groups (group -> may write)."""
        return _caller(who)

    @app.get("/me/permissions", tags=["metrics"])
    def my_permissions(who: Reader, dataset: str) -> Permissions:
        """What the caller may do to ``dataset`` (id or alias), each right with its reason."""
        found = permissions.ownership(state.db, dataset)
        verdicts = permissions.explain(who, found)
        rights = [RightView(v.right.value, v.allowed, v.why) for v in verdicts]
        return Permissions(_caller(who), found.id, rights)

    return app


def _caller(who: tokens.Caller) -> Caller:
    return Caller(who.name, who.role.value, who.scope.value, dict(who.groups), who.token_name)


def default_log_dir(db: Database) -> Path:
    """Where an app that was given no log directory keeps logs: beside its SQLite file (a
    test's, or the embedded database's), else in ``$FRAZIL_HOME/logs``."""
    file = db.url.database if db.backend == "sqlite" else None
    on_disk = file not in (None, "", ":memory:") and not str(file).startswith("file:")
    return Path(str(file)).parent / "logs" if on_disk else frazil_home() / "logs"
