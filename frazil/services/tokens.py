"""API tokens: created once, shown once, stored only as a hash.

A person's token acts as its account (``accounts``): the account's role and groups, as they
are now, within the token's scope and until it expires. Roles: ``admin`` (tokens, users,
sites, everything), ``user`` (submit; control their own and their groups' datasets),
``readonly`` (read what is not private, change nothing), and ``site`` (a site's own token:
register, claim and report for its own tasks). A scope (``read`` < ``write`` < ``admin``)
narrows what one token of a person may do.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, insert, select, update

from frazil.errors import AuthError, Forbidden, NotFound, Rejected
from frazil.services.transitions import record_event
from frazil.store.db import Database
from frazil.store.schema import account, group_member, token

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@\-]{0,99}\Z")  # \Z: "$" lets a final "\n" in
PREFIX = "frz_"


class Role(StrEnum):
    """What a caller may do."""

    ADMIN = "admin"
    USER = "user"
    READONLY = "readonly"
    SITE = "site"


#: the roles of people (accounts); ``site`` belongs to a site's token
PERSON_ROLES = (Role.ADMIN, Role.USER, Role.READONLY)


class Scope(StrEnum):
    """How far one token of a person reaches (at most its account's role)."""

    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


_RANK = {Scope.READ: 0, Scope.WRITE: 1, Scope.ADMIN: 2}
#: the widest scope of each role
ROLE_SCOPE = {
    Role.ADMIN: Scope.ADMIN, Role.USER: Scope.WRITE, Role.READONLY: Scope.READ,
    Role.SITE: Scope.WRITE,
}  # fmt: skip


def narrower(a: Scope, b: Scope) -> Scope:
    """The narrower of two scopes."""
    return a if _RANK[a] <= _RANK[b] else b


def reaches(scope: Scope, needed: Scope) -> bool:
    """Whether ``scope`` is at least ``needed``."""
    return _RANK[scope] >= _RANK[needed]


@dataclass(frozen=True)
class Caller:
    """Who is calling: a person through one of their tokens, a site, or the embedded
    database's local administrator. ``scope`` is what this token may do, at most what
    ``role`` may; ``groups`` maps a person's groups to whether they may write there."""

    name: str
    role: Role
    scope: Scope
    groups: Mapping[str, bool] = field(default_factory=dict)
    token_id: int = 0
    token_name: str = ""

    @property
    def person(self) -> bool:
        """A person (not a site)."""
        return self.role is not Role.SITE

    @property
    def admin(self) -> bool:
        """An administrator acting as one (role and scope)."""
        return self.role is Role.ADMIN and self.scope is Scope.ADMIN


@dataclass(frozen=True)
class TokenInfo:
    """A token's record (never the token): ``user`` is the account it acts as (None: a
    site's token)."""

    id: int
    name: str
    role: Role
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    user: str | None = None
    scope: Scope | None = None
    expires_at: float | None = None


def hash_token(value: str) -> str:
    """The stored form of a token (random and long, so one fast hash is enough)."""
    return hashlib.sha256(value.encode()).hexdigest()


def create_token(
    db: Database,
    name: str,
    role: Role | str,
    *,
    now: float,
    user: str | None = None,
    scope: Scope | str | None = None,
    expires_at: float | None = None,
    actor: str | None = None,
) -> tuple[TokenInfo, str]:
    """A new token; returns its record and the token itself (shown once, never stored).

    A ``site`` token belongs to no one. Any other belongs to the account ``user`` (default:
    an account called ``name``, made with ``role`` if there is none yet) and reaches at most
    ``scope``, the scope of ``role`` and the scope of the account's role."""
    if not NAME.match(name):
        raise Rejected(f"a token name is letters, digits, '_', '.', '@' or '-'; got {name!r}")
    try:
        role = Role(role)
        asked = None if scope is None else Scope(scope)
    except ValueError:
        raise Rejected(
            f"unknown role {role!r} or scope {scope!r}; roles: {', '.join(r.value for r in Role)}"
            f"; scopes: {', '.join(s.value for s in Scope)}"
        ) from None
    if expires_at is not None and expires_at <= now:
        raise Rejected("a token's expiry must be in the future")
    value = PREFIX + secrets.token_urlsafe(32)
    owner = user or name
    if role is Role.SITE and user is not None:
        raise Rejected("a site's token belongs to no user")

    def run(conn: Connection) -> TokenInfo:
        account_id = None
        reach = ROLE_SCOPE[role] if asked is None else narrower(asked, ROLE_SCOPE[role])
        if role is not Role.SITE:
            row = conn.execute(
                select(account.c.id, account.c.role).where(account.c.name == owner)
            ).first()
            if row is None:
                if user is not None:
                    raise NotFound(f"no user {owner!r}")
                made = conn.execute(
                    insert(account).values(
                        name=owner, role=role.value, source="local", created_at=now
                    )
                ).inserted_primary_key
                assert made is not None
                account_id = int(made[0])
            else:
                account_id = row.id
                reach = narrower(reach, ROLE_SCOPE[Role(row.role)])
        stored_scope = None if role is Role.SITE else reach.value
        result = conn.execute(
            insert(token).values(
                name=name, role=role.value, hash=hash_token(value), created_at=now,
                account_id=account_id, scope=stored_scope, expires_at=expires_at,
            )
        )  # fmt: skip
        key = result.inserted_primary_key
        assert key is not None
        if actor is not None:
            whose = "a site" if role is Role.SITE else f"user {owner}"
            record_event(conn, now, actor, "token", name, "create-token", new=stored_scope,
                         reason=f"{whose}; token {key[0]}")  # fmt: skip
        return TokenInfo(
            int(key[0]), name, role, now, None, None,
            None if role is Role.SITE else owner, None if role is Role.SITE else reach, expires_at,
        )  # fmt: skip

    return db.transaction(run), value


_RECORD = (
    token.c.id, token.c.name, token.c.role, token.c.created_at, token.c.last_used_at,
    token.c.revoked_at, account.c.name.label("user"), token.c.scope, token.c.expires_at,
)  # fmt: skip


def _info(row: Any) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        revoked_at=row.revoked_at,
        user=row.user,
        scope=None if row.scope is None else Scope(row.scope),
        expires_at=row.expires_at,
    )


def verify_token(db: Database, value: str, *, now: float) -> Caller:
    """Who calls with this token; ``AuthError`` if it is unknown, revoked, expired, or its
    account is disabled."""
    digest = hash_token(value)
    with db.read() as conn:
        row = conn.execute(
            select(
                token.c.id, token.c.name, token.c.role, token.c.hash, token.c.revoked_at,
                token.c.scope, token.c.expires_at, token.c.account_id,
                account.c.name.label("user"), account.c.role.label("user_role"),
                account.c.disabled_at,
            )
            .select_from(token.outerjoin(account, account.c.id == token.c.account_id))
            .where(token.c.hash == digest)
        ).first()  # fmt: skip
        if row is None or not hmac.compare_digest(row.hash, digest):
            raise AuthError("invalid token")
        groups = {} if row.account_id is None else {
            g.group_name: bool(g.may_write)
            for g in conn.execute(
                select(group_member.c.group_name, group_member.c.may_write).where(
                    group_member.c.account_id == row.account_id
                )
            )
        }  # fmt: skip
    if row.revoked_at is not None:
        raise AuthError(f"token {row.name!r} was revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise AuthError(f"token {row.name!r} has expired")
    if row.account_id is None:
        role = Role(row.role)
        return Caller(row.name, role, ROLE_SCOPE[role], {}, row.id, row.name)
    if row.disabled_at is not None:
        raise AuthError(f"user {row.user!r} is disabled")
    role = Role(row.user_role)
    scope = ROLE_SCOPE[role] if row.scope is None else narrower(Scope(row.scope), ROLE_SCOPE[role])
    return Caller(row.user, role, scope, groups, row.id, row.name)


def touch_token(db: Database, token_id: int, now: float) -> None:
    """Record that a token was used (callers may do this at a coarse interval)."""
    db.transaction(
        lambda conn: conn.execute(
            update(token).where(token.c.id == token_id).values(last_used_at=now)
        )
    )


def list_tokens(db: Database, *, user: str | None = None) -> list[TokenInfo]:
    """Every token's record, or ``user``'s tokens' (never the tokens themselves)."""
    stmt = (
        select(*_RECORD)
        .select_from(token.outerjoin(account, account.c.id == token.c.account_id))
        .order_by(token.c.id)
    )
    if user is not None:
        stmt = stmt.where(account.c.name == user)
    with db.read() as conn:
        return [_info(r) for r in conn.execute(stmt)]


def revoke_token(
    db: Database, token_id: int, *, now: float, user: str | None = None, actor: str | None = None
) -> None:
    """Make a token unusable from now on (with ``user``: only one of that user's; another's
    is as unknown as a token that does not exist)."""

    def run(conn: Connection) -> None:
        mine = [token.c.id == token_id]
        if user is not None:
            owner = select(account.c.id).where(account.c.name == user).scalar_subquery()
            mine.append(token.c.account_id == owner)
        result = conn.execute(
            update(token).where(*mine, token.c.revoked_at.is_(None)).values(revoked_at=now)
        )
        if result.rowcount != 1:
            exists = conn.execute(select(token.c.id).where(*mine)).first()
            raise (
                NotFound(f"no token {token_id}")
                if exists is None
                else Rejected(f"token {token_id} is already revoked")
            )
        if actor is not None:
            record_event(conn, now, actor, "token", str(token_id), "revoke-token")

    db.transaction(run)


def require(who: Caller, role: Role) -> None:
    """Raise ``Forbidden`` unless the caller may act as ``role``: ``admin`` needs an
    administrator with an admin-scope token, ``user`` a user or administrator with a
    write-scope token, ``site`` a site's token or an administrator's."""
    if role is Role.SITE:
        ok = who.role is Role.SITE or who.admin
    elif role is Role.USER:
        ok = who.role in (Role.ADMIN, Role.USER) and reaches(who.scope, Scope.WRITE)
    elif role is Role.ADMIN:
        ok = who.admin
    else:
        ok = True
    if not ok:
        scoped = "" if ROLE_SCOPE[who.role] is who.scope else f" of {who.scope.value} scope"
        raise Forbidden(
            f"this needs a {role.value} token; {who.name!r} is a {who.role.value} token{scoped}"
        )
