"""What every route needs: the app's state, and who is calling (a token or a passkey).

Tokens arrive as ``Authorization: Bearer <token>``; pilots send ``Authorization: Passkey
<passkey>`` and the services check it against the attempt. Valid tokens are remembered for
a few seconds so that a busy site does not cost a database read per request; a revoked token
stops working within that time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from frazil.config import QuotaSettings, ValidationSettings
from frazil.errors import AuthError, Forbidden
from frazil.server.waker import Waker
from frazil.services.attempts import DEFAULT_CAPS, ReportCaps
from frazil.services.blobs import DEFAULT_LIMITS
from frazil.services.logins import DEFAULT_LIMITS as LOGIN_LIMITS
from frazil.services.logins import LoginLimits
from frazil.services.tokens import Caller, Role, require, verify_token
from frazil.store.blobs import BlobStore
from frazil.store.db import Database
from frazil.store.log_files import LogFiles
from frazil.wire import BlobLimits

TOKEN_CACHE_SECONDS = 5.0


@dataclass
class AppState:
    """Shared by every request of one app."""

    db: Database
    clock: Callable[[], float] = time.time
    metrics: Any = None
    waker: Waker = field(default_factory=Waker)
    token_ttl: float = TOKEN_CACHE_SECONDS
    report_caps: ReportCaps = DEFAULT_CAPS
    validation: ValidationSettings = field(default_factory=ValidationSettings)
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    logins: LoginLimits = LOGIN_LIMITS
    #: the command line's embedded database (``frazil.cli.inprocess``): every caller is this
    #: local administrator; never set by ``frazil server``
    local: Caller | None = None
    #: files uploaded with configs (None: this server keeps none), and their caps
    blobs: BlobStore | None = None
    blob_limits: BlobLimits = DEFAULT_LIMITS
    #: where attempts' logs are kept (None: nowhere, only their tails in the database)
    logs: LogFiles | None = None
    _tokens: dict[str, tuple[float, Caller]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def now(self) -> float:
        """The current time (from the injected clock)."""
        return self.clock()

    def cached_token(self, value: str) -> Caller | None:
        """Who a token belongs to if that was checked in the last ``token_ttl`` seconds."""
        if self.local is not None:
            return self.local
        with self._lock:
            hit = self._tokens.get(value)
        return hit[1] if hit is not None and time.monotonic() - hit[0] < self.token_ttl else None

    def forget_tokens(self) -> None:
        """Check every token afresh at its next use (after a change to people: an account
        disabled, a membership changed); other servers of the same database see the change
        within ``token_ttl``."""
        with self._lock:
            self._tokens.clear()

    def token(self, value: str) -> Caller:
        """Who a token belongs to (cached briefly; a database read otherwise)."""
        mono = time.monotonic()
        info = self.cached_token(value)
        if info is not None:
            return info
        info = verify_token(self.db, value, now=self.now())
        with self._lock:
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            self._tokens[value] = (mono, info)
        return info


# The dependencies are coroutines: FastAPI runs a plain function in its thread pool, a hop
# to another thread and back for every request; only a token missing from the cache needs one.


async def state(request: Request) -> AppState:
    """The app's state."""
    value: AppState = request.app.state.frazil
    return value


def _credentials(request: Request, scheme: str) -> str:
    header = request.headers.get("authorization", "")
    kind, _, value = header.partition(" ")
    if kind.lower() != scheme.lower() or not value.strip():
        raise AuthError(f"this route needs 'Authorization: {scheme} ...'")
    return value.strip()


async def _token(app: AppState, value: str) -> Caller:
    info = app.cached_token(value)
    return info if info is not None else await run_in_threadpool(app.token, value)


def caller(role: Role) -> Callable[..., Awaitable[Caller]]:
    """A dependency that admits tokens whose role may act as ``role``."""

    async def dependency(request: Request, app: Annotated[AppState, Depends(state)]) -> Caller:
        info = await _token(app, _credentials(request, "Bearer"))
        require(info, role)
        return info

    return dependency


async def passkey(request: Request) -> str:
    """The pilot's passkey (checked by the service against the attempt)."""
    return _credentials(request, "Passkey")


async def pilot_key(request: Request) -> str:
    """A multi-task pilot's key (checked by the service against the pilot)."""
    return _credentials(request, "Pilot")


async def reservation(request: Request) -> str:
    """A reserved task's key (checked by the service against the task)."""
    return _credentials(request, "Reservation")


State = Annotated[AppState, Depends(state)]
Reservation = Annotated[str, Depends(reservation)]
User = Annotated[Caller, Depends(caller(Role.USER))]
Admin = Annotated[Caller, Depends(caller(Role.ADMIN))]
Site = Annotated[Caller, Depends(caller(Role.SITE))]
Passkey = Annotated[str, Depends(passkey)]
PilotKey = Annotated[str, Depends(pilot_key)]


async def reader(request: Request, app: Annotated[AppState, Depends(state)]) -> Caller:
    """Any valid token may read."""
    return await _token(app, _credentials(request, "Bearer"))


Reader = Annotated[Caller, Depends(reader)]


def own(who: Caller, name: str) -> None:
    """Refuse a site token that acts for another site than ``name`` (an admin may act for any)."""
    if not who.admin and who.name != name:
        raise Forbidden(f"this needs a site token for {name!r}; {who.name!r} is for another site")


def actor(info: Caller) -> str:
    """How a caller appears in the audit trail."""
    return f"{info.role.value}:{info.name}"
