"""People: user accounts, their passwords, groups and who in a group may write.

A user has a role (``admin``, ``user`` or ``readonly``, see ``tokens.Role``) and belongs to
groups; a member with ``may_write`` controls the group's datasets as its owner would
(``permissions``). Passwords are kept as argon2 hashes (argon2-cffi's defaults, RFC 9106's
second recommended set). A wrong password and an unknown user fail alike, after the same
work: an unknown name is checked against a hash of nothing, so timing tells nothing either.
A disabled user's tokens stop working (``tokens.verify_token`` refuses them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, insert, select, update

from frazil.errors import AuthError, NotFound, Rejected
from frazil.services.tokens import NAME, PERSON_ROLES, Role
from frazil.services.transitions import record_event
from frazil.store.db import Database
from frazil.store.schema import account, group_member, user_group

SOURCES = ("local", "ldap", "oidc")
MIN_PASSWORD = 8
_hasher = PasswordHasher()
#: what an unknown user's password is checked against (the same work as a real check)
_NOBODY = _hasher.hash("not a password of anybody")


@dataclass(frozen=True)
class UserInfo:
    """One account (never its password)."""

    id: int
    name: str
    role: Role
    source: str
    email: str | None
    created_at: float
    disabled_at: float | None
    #: group name -> may write to its datasets
    groups: dict[str, bool]


@dataclass(frozen=True)
class GroupInfo:
    """One group and its members (user name -> may write)."""

    name: str
    description: str
    created_at: float
    members: dict[str, bool]


def _name(kind: str, value: str) -> str:
    if not NAME.match(value):
        raise Rejected(f"a {kind} name is letters, digits, '_', '.', '@' or '-'; got {value!r}")
    return value


def _role(value: Role | str) -> Role:
    try:
        role = Role(value)
    except ValueError:
        role = None
    if role not in PERSON_ROLES:
        raise Rejected(
            f"unknown role {value!r} for a user; roles: {', '.join(r.value for r in PERSON_ROLES)}"
        )
    assert role is not None
    return role


def hash_password(password: str) -> str:
    """The stored form of a password; short ones are refused."""
    if len(password) < MIN_PASSWORD:
        raise Rejected(f"a password has at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def _groups(conn: Connection, ids: list[int]) -> dict[int, dict[str, bool]]:
    found: dict[int, dict[str, bool]] = {i: {} for i in ids}
    if ids:
        rows = conn.execute(
            select(group_member.c.account_id, group_member.c.group_name, group_member.c.may_write)
            .where(group_member.c.account_id.in_(ids))
            .order_by(group_member.c.group_name)
        )
        for r in rows:
            found[r.account_id][r.group_name] = bool(r.may_write)
    return found


def _user(row: Any, groups: dict[str, bool]) -> UserInfo:
    return UserInfo(
        id=row.id, name=row.name, role=Role(row.role), source=row.source, email=row.email,
        created_at=row.created_at, disabled_at=row.disabled_at, groups=groups,
    )  # fmt: skip


def _row(conn: Connection, name: str) -> Any:
    row = conn.execute(select(account).where(account.c.name == name)).first()
    if row is None:
        raise NotFound(f"no user {name!r}")
    return row


def add_user(
    db: Database,
    name: str,
    role: Role | str,
    *,
    now: float,
    password: str | None = None,
    source: str = "local",
    email: str | None = None,
    actor: str = "admin",
) -> UserInfo:
    """A new account; a local one without a password logs in with tokens an admin makes."""
    _name("user", name)
    person = _role(role)
    if source not in SOURCES:
        raise Rejected(f"unknown account source {source!r}; sources: {', '.join(SOURCES)}")
    hashed = None if password is None else hash_password(password)

    def run(conn: Connection) -> UserInfo:
        if conn.execute(select(account.c.id).where(account.c.name == name)).first():
            raise Rejected(f"user {name!r} already exists")
        conn.execute(
            insert(account).values(
                name=name, role=person.value, password=hashed, source=source, email=email,
                created_at=now,
            )
        )  # fmt: skip
        record_event(conn, now, actor, "user", name, "add-user", new=person.value, reason=source)
        return _user(_row(conn, name), {})

    return db.transaction(run)


def user(db: Database, name: str) -> UserInfo:
    """One account, with its groups."""
    with db.read() as conn:
        row = _row(conn, name)
        return _user(row, _groups(conn, [row.id])[row.id])


def list_users(db: Database) -> list[UserInfo]:
    """Every account, by name."""
    with db.read() as conn:
        rows = conn.execute(select(account).order_by(account.c.name)).all()
        groups = _groups(conn, [r.id for r in rows])
    return [_user(r, groups[r.id]) for r in rows]


def disable_user(
    db: Database, name: str, *, now: float, enable: bool = False, actor: str = "admin"
) -> UserInfo:
    """Stop (or with ``enable``, restore) an account's logins and tokens."""

    def run(conn: Connection) -> UserInfo:
        row = _row(conn, name)
        conn.execute(
            update(account)
            .where(account.c.id == row.id)
            .values(disabled_at=None if enable else (row.disabled_at or now))
        )
        action = "enable-user" if enable else "disable-user"
        record_event(conn, now, actor, "user", name, action)
        row = _row(conn, name)
        return _user(row, _groups(conn, [row.id])[row.id])

    return db.transaction(run)


def set_password(
    db: Database, name: str, password: str, *, now: float, actor: str = "admin"
) -> None:
    """Replace a local account's password."""
    hashed = hash_password(password)

    def run(conn: Connection) -> None:
        row = _row(conn, name)
        if row.source != "local":
            raise Rejected(f"user {name!r} logs in through {row.source}: no password here")
        conn.execute(update(account).where(account.c.id == row.id).values(password=hashed))
        record_event(conn, now, actor, "user", name, "set-password")

    db.transaction(run)


def check_password(db: Database, name: str, password: str) -> UserInfo:
    """The account whose name and password these are; one ``AuthError`` for every failure
    (unknown user, wrong password, no password here, disabled), after the same work."""
    with db.read() as conn:
        row = conn.execute(select(account).where(account.c.name == name)).first()
        groups = _groups(conn, [row.id])[row.id] if row is not None else {}
    stored = row.password if row is not None and row.password else _NOBODY
    try:
        good = _hasher.verify(stored, password) and stored is not _NOBODY
    except (VerificationError, InvalidHashError):
        good = False
    if not good or row is None or row.disabled_at is not None:
        raise AuthError("wrong user name or password")
    return _user(row, groups)


def add_group(
    db: Database, name: str, *, now: float, description: str = "", actor: str = "admin"
) -> GroupInfo:
    """A new, empty group."""
    _name("group", name)

    def run(conn: Connection) -> None:
        if conn.execute(select(user_group.c.name).where(user_group.c.name == name)).first():
            raise Rejected(f"group {name!r} already exists")
        conn.execute(insert(user_group).values(name=name, description=description, created_at=now))
        record_event(conn, now, actor, "group", name, "add-group")

    db.transaction(run)
    return GroupInfo(name, description, now, {})


def _members(conn: Connection, names: list[str]) -> dict[str, dict[str, bool]]:
    found: dict[str, dict[str, bool]] = {n: {} for n in names}
    rows = conn.execute(
        select(group_member.c.group_name, account.c.name, group_member.c.may_write)
        .join(account, account.c.id == group_member.c.account_id)
        .where(group_member.c.group_name.in_(names))
        .order_by(account.c.name)
    )
    for r in rows:
        found[r.group_name][r.name] = bool(r.may_write)
    return found


def list_groups(db: Database) -> list[GroupInfo]:
    """Every group with its members, by name."""
    with db.read() as conn:
        rows = conn.execute(select(user_group).order_by(user_group.c.name)).all()
        members = _members(conn, [r.name for r in rows])
    return [GroupInfo(r.name, r.description, r.created_at, members[r.name]) for r in rows]


def group(db: Database, name: str) -> GroupInfo:
    """One group with its members."""
    with db.read() as conn:
        row = conn.execute(select(user_group).where(user_group.c.name == name)).first()
        if row is None:
            raise NotFound(f"no group {name!r}")
        return GroupInfo(row.name, row.description, row.created_at, _members(conn, [name])[name])


def set_member(
    db: Database, group_name: str, user_name: str, *, write: bool | None, now: float,
    actor: str = "admin",
) -> GroupInfo:  # fmt: skip
    """Put a user in a group (``write``: may control its datasets), or take them out
    (``write`` None)."""

    def run(conn: Connection) -> None:
        if not conn.execute(
            select(user_group.c.name).where(user_group.c.name == group_name)
        ).first():
            raise NotFound(f"no group {group_name!r}")
        who = _row(conn, user_name).id
        where = (group_member.c.group_name == group_name, group_member.c.account_id == who)
        gone = conn.execute(delete(group_member).where(*where)).rowcount
        if write is None:
            if not gone:
                raise Rejected(f"user {user_name!r} is not in group {group_name!r}")
            record_event(conn, now, actor, "group", group_name, "remove-member", reason=user_name)
            return
        conn.execute(
            insert(group_member).values(group_name=group_name, account_id=who, may_write=write)
        )
        new = "write" if write else "read"
        record_event(conn, now, actor, "group", group_name, "set-member", new=new, reason=user_name)

    db.transaction(run)
    return group(db, group_name)
