"""Routes for people: user accounts and groups (administrators change them; a user may
change their own password and read the groups)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Request

from frazil.errors import Forbidden, Rejected
from frazil.server.deps import Admin, Reader, State, actor
from frazil.server.schemas import (
    DisabledBody,
    GroupBody,
    LoginBody,
    MemberBody,
    OwnTokenBody,
    PasswordBody,
    UserBody,
)
from frazil.services import accounts, logins, permissions, tokens
from frazil.services.tokens import Scope, reaches
from frazil.wire import GroupView, NewToken, UserView

router = APIRouter(tags=["admin"])


def _user(info: accounts.UserInfo) -> UserView:
    fields = asdict(info)
    fields.pop("id")
    return UserView(**{**fields, "role": info.role.value})


def _group(info: accounts.GroupInfo) -> GroupView:
    return GroupView(**asdict(info))


@router.post("/login", status_code=201)
def login(body: LoginBody, request: Request, app: State) -> NewToken:
    """A new token for a user who gives their name and password (no token needed). Every
    failure answers alike (401); too many failures for a name or from an address in a while
    are refused (429) for a while."""
    address = request.client.host if request.client else "unknown"
    info, value = logins.login(
        app.db, body.user, body.password, address=address, now=app.now(),
        token_name=body.token_name, scope=body.scope, limits=app.logins,
    )  # fmt: skip
    return NewToken(**asdict(info), token=value)


@router.get("/me/tokens")
def my_tokens(app: State, who: Reader) -> list[tokens.TokenInfo]:
    """The caller's own tokens (never the tokens themselves)."""
    return tokens.list_tokens(app.db, user=_person(who))


@router.post("/me/tokens", status_code=201)
def make_my_token(body: OwnTokenBody, app: State, who: Reader) -> NewToken:
    """A new token of the caller's own, reaching no further than the caller's (shown in
    this answer only)."""
    person = _person(who)
    expires = None if body.expires_in is None else app.now() + body.expires_in
    try:
        scope = who.scope if body.scope is None else Scope(body.scope)
    except ValueError:
        raise Rejected(f"unknown scope {body.scope!r}; scopes: read, write, admin") from None
    if not reaches(who.scope, scope):
        raise Forbidden(f"a {who.scope.value}-scope token cannot make a {scope.value}-scope one")
    info, value = tokens.create_token(
        app.db, body.name, who.role, now=app.now(), user=person, scope=scope, expires_at=expires,
        actor=actor(who),
    )  # fmt: skip
    return NewToken(**asdict(info), token=value)


@router.delete("/me/tokens/{token_id}")
def revoke_my_token(token_id: int, app: State, who: Reader) -> dict[str, bool]:
    """Revoke one of the caller's own tokens."""
    tokens.revoke_token(app.db, token_id, now=app.now(), user=_person(who), actor=actor(who))
    app.forget_tokens()
    return {"revoked": True}


def _person(who: tokens.Caller) -> str:
    if not who.person:
        raise Forbidden(f"{who.name!r} is a site: its token belongs to no user")
    return who.name


@router.get("/users")
def list_users(app: State, _: Admin) -> list[UserView]:
    """Every user account, by name (never a password)."""
    return [_user(u) for u in accounts.list_users(app.db)]


@router.post("/users", status_code=201)
def add_user(body: UserBody, app: State, who: Admin) -> UserView:
    """A new account: a local one with a password (or none: it uses tokens an administrator
    makes), or one that logs in through the directory or single sign-on."""
    return _user(
        accounts.add_user(
            app.db, body.name, body.role, now=app.now(), password=body.password,
            source=body.source, email=body.email, actor=actor(who),
        )
    )  # fmt: skip


@router.get("/users/{name}")
def get_user(name: str, app: State, who: Reader) -> UserView:
    """One account (an administrator, or the user themselves)."""
    if not who.admin and who.name != name:
        raise Forbidden(f"only an administrator or {name!r} may read {name!r}'s account")
    return _user(accounts.user(app.db, name))


@router.put("/users/{name}/disabled")
def disable_user(name: str, body: DisabledBody, app: State, who: Admin) -> UserView:
    """Disable an account (its tokens stop working at once) or enable it again."""
    done = accounts.disable_user(
        app.db, name, now=app.now(), enable=not body.disabled, actor=actor(who)
    )
    app.forget_tokens()
    return _user(done)


@router.put("/users/{name}/password")
def set_password(name: str, body: PasswordBody, app: State, who: Reader) -> dict[str, bool]:
    """Replace a local account's password (an administrator, or the user themselves with a
    token that writes)."""
    permissions.check_account(who, name)
    accounts.set_password(app.db, name, body.password, now=app.now(), actor=actor(who))
    return {"changed": True}


@router.get("/groups")
def list_groups(app: State, who: Reader) -> list[GroupView]:
    """Every group with its members (people, not sites)."""
    if not who.person:
        raise Forbidden(f"{who.name!r} is a site: sites do not read groups")
    return [_group(g) for g in accounts.list_groups(app.db)]


@router.post("/groups", status_code=201)
def add_group(body: GroupBody, app: State, who: Admin) -> GroupView:
    """A new, empty group."""
    return _group(
        accounts.add_group(
            app.db, body.name, now=app.now(), description=body.description, actor=actor(who)
        )
    )


@router.put("/groups/{name}/members/{user}")
def set_member(name: str, user: str, body: MemberBody, app: State, who: Admin) -> GroupView:
    """Put a user in a group, or change whether they may write to its datasets."""
    done = accounts.set_member(
        app.db, name, user, write=body.write, now=app.now(), actor=actor(who)
    )
    app.forget_tokens()
    return _group(done)


@router.delete("/groups/{name}/members/{user}")
def remove_member(name: str, user: str, app: State, who: Admin) -> GroupView:
    """Take a user out of a group."""
    done = accounts.set_member(app.db, name, user, write=None, now=app.now(), actor=actor(who))
    app.forget_tokens()
    return _group(done)
