"""Logging in with a user name and password: a new token for the account, or one answer
for every failure.

Failed logins are counted in the audit trail (``failed-login`` events, written whatever
the outcome of the request), so that every server of one database counts the same: after
``LoginLimits.failures`` failures for one user name, or from one address, within
``LoginLimits.window`` seconds, further attempts are refused (429) until the window has
moved on, even with the right password. A wrong password and an unknown user answer alike
(``accounts.check_password``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, func, or_, select

from frazil.errors import AuthError, TooManyAttempts
from frazil.services import accounts, tokens
from frazil.services.transitions import record_event
from frazil.store.db import Database
from frazil.store.schema import event

FAILED = "failed-login"
LOGIN = "login"


@dataclass(frozen=True)
class LoginLimits:
    """How many failed logins a user name or an address may have in ``window`` seconds."""

    failures: int = 5
    window: float = 300.0
    #: how long a token made by a login lives (seconds)
    token_life: float = 30 * 86_400.0


DEFAULT_LIMITS = LoginLimits()


def _failures(conn: Connection, name: str, address: str, since: float) -> tuple[int, int]:
    rows = conn.execute(
        select(event.c.object_id, event.c.reason, func.count().label("n"))
        .where(event.c.action == FAILED, event.c.time >= since)
        .where(or_(event.c.object_id == name, event.c.reason == address))
        .group_by(event.c.object_id, event.c.reason)
    ).all()
    by_name = sum(int(r.n) for r in rows if r.object_id == name)
    by_address = sum(int(r.n) for r in rows if r.reason == address)
    return by_name, by_address


def login(
    db: Database,
    name: str,
    password: str,
    *,
    address: str,
    now: float,
    token_name: str | None = None,
    scope: str | None = None,
    limits: LoginLimits = DEFAULT_LIMITS,
) -> tuple[tokens.TokenInfo, str]:
    """A new token for ``name``'s account if ``password`` is theirs (``address``: where the
    request came from, for the limit and the audit trail)."""
    with db.read() as conn:
        by_name, by_address = _failures(conn, name, address, now - limits.window)
    if by_name >= limits.failures or by_address >= limits.failures:
        who = f"user {name!r}" if by_name >= limits.failures else f"address {address}"
        raise TooManyAttempts(
            f"too many failed logins for {who}: try again in {limits.window / 60:g} minutes"
        )
    try:
        user = accounts.check_password(db, name, password)
    except AuthError:
        db.transaction(
            lambda conn: record_event(conn, now, "anonymous", "user", name, FAILED, reason=address)
        )
        raise
    made = tokens.create_token(
        db, token_name or f"login-{int(now)}", user.role, now=now, user=user.name,
        scope=scope, expires_at=now + limits.token_life,
    )  # fmt: skip
    actor, reason = f"{user.role.value}:{user.name}", f"{address}; token {made[0].name}"
    db.transaction(
        lambda conn: record_event(conn, now, actor, "user", user.name, LOGIN, reason=reason)
    )
    return made
