"""API tokens: created once, shown once, stored only as a hash.

Roles, each allowed what the ones below it may do: ``admin`` (tokens, sites, everything),
``user`` (submit and control datasets, read everything), ``site`` (register, claim and
report for its own tasks, read).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from frazil.errors import AuthError, Forbidden, NotFound, Rejected
from frazil.store.db import Database
from frazil.store.schema import token

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}\Z")  # \Z: "$" lets a final "\n" in
PREFIX = "frz_"


class Role(StrEnum):
    """What a token may do."""

    ADMIN = "admin"
    USER = "user"
    SITE = "site"


#: Which roles satisfy a requirement for each role.
SATISFIES: dict[Role, frozenset[Role]] = {
    Role.ADMIN: frozenset({Role.ADMIN}),
    Role.USER: frozenset({Role.ADMIN, Role.USER}),
    Role.SITE: frozenset({Role.ADMIN, Role.SITE}),
}


@dataclass(frozen=True)
class TokenInfo:
    """Who a valid token belongs to."""

    id: int
    name: str
    role: Role
    created_at: float
    last_used_at: float | None
    revoked_at: float | None


def hash_token(value: str) -> str:
    """The stored form of a token (random and long, so one fast hash is enough)."""
    return hashlib.sha256(value.encode()).hexdigest()


def create_token(db: Database, name: str, role: Role | str, *, now: float) -> tuple[TokenInfo, str]:
    """A new token; returns its record and the token itself (shown once, never stored)."""
    if not NAME.match(name):
        raise Rejected(f"a token name is letters, digits, '_', '.', '@' or '-'; got {name!r}")
    try:
        role = Role(role)
    except ValueError:
        raise Rejected(
            f"unknown role {role!r}; roles: {', '.join(r.value for r in Role)}"
        ) from None
    value = PREFIX + secrets.token_urlsafe(32)

    def run(conn: Connection) -> int:
        result = conn.execute(
            insert(token).values(name=name, role=role.value, hash=hash_token(value), created_at=now)
        )
        key = result.inserted_primary_key
        assert key is not None
        return int(key[0])

    token_id = db.transaction(run)
    return TokenInfo(token_id, name, role, now, None, None), value


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
    )


def verify_token(db: Database, value: str) -> TokenInfo:
    """The token's owner; ``AuthError`` if it is unknown or revoked."""
    digest = hash_token(value)
    with db.read() as conn:
        row = conn.execute(select(token).where(token.c.hash == digest)).first()
    if row is None or not hmac.compare_digest(row.hash, digest):
        raise AuthError("invalid token")
    if row.revoked_at is not None:
        raise AuthError(f"token {row.name!r} was revoked")
    return _info(row)


def touch_token(db: Database, token_id: int, now: float) -> None:
    """Record that a token was used (callers may do this at a coarse interval)."""
    db.transaction(
        lambda conn: conn.execute(
            update(token).where(token.c.id == token_id).values(last_used_at=now)
        )
    )


def list_tokens(db: Database) -> list[TokenInfo]:
    """Every token's record (never the tokens themselves)."""
    with db.read() as conn:
        return [_info(r) for r in conn.execute(select(token).order_by(token.c.id))]


def revoke_token(db: Database, token_id: int, *, now: float) -> None:
    """Make a token unusable from now on."""

    def run(conn: Connection) -> None:
        result = conn.execute(
            update(token)
            .where(token.c.id == token_id, token.c.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if result.rowcount != 1:
            exists = conn.execute(select(token.c.id).where(token.c.id == token_id)).first()
            raise (
                NotFound(f"no token {token_id}")
                if exists is None
                else Rejected(f"token {token_id} is already revoked")
            )

    db.transaction(run)


def require(info: TokenInfo, role: Role) -> None:
    """Raise ``Forbidden`` unless the token's role may act as ``role``."""
    if info.role not in SATISFIES[role]:
        raise Forbidden(
            f"this needs a {role.value} token; {info.name!r} is a {info.role.value} token"
        )
