"""People on SQLite, PostgreSQL and MariaDB: accounts with argon2 passwords, groups and
their writers, and tokens that act as their account (its role and groups as they are now,
within the token's scope, until it expires or the account is disabled)."""

import time

import pytest

from frazil.errors import AuthError, Forbidden, NotFound, Rejected
from frazil.services import accounts, tokens
from frazil.services.tokens import Role, Scope

NOW = 5_000_000.0


def test_a_password_is_kept_as_an_argon2_hash_and_every_failure_answers_alike(db):
    alice = accounts.add_user(db, "alice", "user", now=NOW, password="correct horse")
    assert alice.role is Role.USER and alice.groups == {} and alice.disabled_at is None
    with db.read() as conn:
        stored = conn.exec_driver_sql("SELECT password FROM account").scalar_one()
    assert stored.startswith("$argon2id$") and "correct horse" not in stored
    assert accounts.check_password(db, "alice", "correct horse").name == "alice"
    errors = []
    for name, password in [("alice", "wrong horse"), ("nobody", "correct horse")]:
        with pytest.raises(AuthError) as caught:
            accounts.check_password(db, name, password)
        errors.append(str(caught.value))
    assert errors == ["wrong user name or password"] * 2
    accounts.disable_user(db, "alice", now=NOW)
    with pytest.raises(AuthError, match="wrong user name or password"):
        accounts.check_password(db, "alice", "correct horse")


def test_an_unknown_user_takes_as_long_as_a_wrong_password(db):
    """No timing oracle: the unknown name is checked against a hash of nothing."""
    accounts.add_user(db, "alice", "user", now=NOW, password="correct horse")

    def took(name: str) -> float:
        start = time.perf_counter()
        with pytest.raises(AuthError):
            accounts.check_password(db, name, "wrong horse")
        return time.perf_counter() - start

    known = min(took("alice") for _ in range(5))
    unknown = min(took("nobody") for _ in range(5))
    assert 0.5 < unknown / known < 2.0, (known, unknown)


def test_bad_people_input_is_refused_with_what_is_wrong(db):
    accounts.add_user(db, "alice", "user", now=NOW)
    with pytest.raises(Rejected, match="already exists"):
        accounts.add_user(db, "alice", "admin", now=NOW)
    with pytest.raises(Rejected, match="unknown role 'site' for a user"):
        accounts.add_user(db, "bob", "site", now=NOW)
    with pytest.raises(Rejected, match="at least 8 characters"):
        accounts.add_user(db, "bob", "user", now=NOW, password="short")
    with pytest.raises(Rejected, match="a user name is letters"):
        accounts.add_user(db, "bob smith", "user", now=NOW)
    with pytest.raises(NotFound, match="no group 'physics'"):
        accounts.set_member(db, "physics", "alice", write=True, now=NOW)
    accounts.add_group(db, "physics", now=NOW)
    with pytest.raises(NotFound, match="no user 'carol'"):
        accounts.set_member(db, "physics", "carol", write=True, now=NOW)
    with pytest.raises(Rejected, match="not in group"):
        accounts.set_member(db, "physics", "alice", write=None, now=NOW)
    assert [u.name for u in accounts.list_users(db)] == ["alice"]  # nothing half-made


def test_groups_hold_members_who_may_write_or_only_read(db):
    for name in ("alice", "bob"):
        accounts.add_user(db, name, "user", now=NOW)
    accounts.add_group(db, "physics", now=NOW, description="the physics working group")
    accounts.set_member(db, "physics", "alice", write=True, now=NOW)
    group = accounts.set_member(db, "physics", "bob", write=False, now=NOW)
    assert group.members == {"alice": True, "bob": False}
    assert accounts.user(db, "alice").groups == {"physics": True}
    accounts.set_member(db, "physics", "bob", write=True, now=NOW)  # a change, not a second row
    accounts.set_member(db, "physics", "alice", write=None, now=NOW)
    assert accounts.group(db, "physics").members == {"bob": True}
    assert [(g.name, g.members) for g in accounts.list_groups(db)] == [("physics", {"bob": True})]


def test_a_token_acts_as_its_account_as_the_account_is_now(db):
    accounts.add_user(db, "alice", "user", now=NOW)
    accounts.add_group(db, "physics", now=NOW)
    info, value = tokens.create_token(db, "laptop", "user", user="alice", now=NOW)
    assert (info.user, info.scope) == ("alice", Scope.WRITE)
    who = tokens.verify_token(db, value, now=NOW)
    assert (who.name, who.role, who.scope, who.token_name) == (
        "alice",
        Role.USER,
        Scope.WRITE,
        "laptop",
    )
    accounts.set_member(db, "physics", "alice", write=True, now=NOW)
    assert tokens.verify_token(db, value, now=NOW).groups == {"physics": True}
    accounts.disable_user(db, "alice", now=NOW)
    with pytest.raises(AuthError, match="user 'alice' is disabled"):
        tokens.verify_token(db, value, now=NOW)
    accounts.disable_user(db, "alice", now=NOW, enable=True)
    assert tokens.verify_token(db, value, now=NOW).name == "alice"


def test_a_token_reaches_no_further_than_its_scope_its_role_and_its_expiry(db):
    accounts.add_user(db, "rita", "readonly", now=NOW)
    _, wide = tokens.create_token(db, "rita-admin", "admin", user="rita", now=NOW)
    rita = tokens.verify_token(db, wide, now=NOW)
    assert (rita.role, rita.scope) == (Role.READONLY, Scope.READ)  # the account's role caps it
    with pytest.raises(Forbidden, match="needs a user token; 'rita' is a readonly token"):
        tokens.require(rita, Role.USER)
    _, admin_value = tokens.create_token(db, "root", "admin", now=NOW)
    _, narrow = tokens.create_token(db, "root-ro", "admin", user="root", scope="read", now=NOW)
    assert tokens.verify_token(db, admin_value, now=NOW).admin
    root_ro = tokens.verify_token(db, narrow, now=NOW)
    assert not root_ro.admin
    with pytest.raises(Forbidden, match="'root' is a admin token of read scope"):
        tokens.require(root_ro, Role.USER)
    _, soon = tokens.create_token(db, "soon", "user", user="rita", now=NOW, expires_at=NOW + 60)
    assert tokens.verify_token(db, soon, now=NOW + 59).name == "rita"
    with pytest.raises(AuthError, match="token 'soon' has expired"):
        tokens.verify_token(db, soon, now=NOW + 60)
    with pytest.raises(Rejected, match="expiry must be in the future"):
        tokens.create_token(db, "late", "user", user="rita", now=NOW, expires_at=NOW)
    with pytest.raises(NotFound, match="no user 'zed'"):
        tokens.create_token(db, "z", "user", user="zed", now=NOW)


def test_a_site_token_belongs_to_no_one_and_a_legacy_token_makes_its_account(db):
    info, value = tokens.create_token(db, "site-a", "site", now=NOW)
    assert info.user is None and info.scope is None
    site = tokens.verify_token(db, value, now=NOW)
    assert (site.name, site.role, site.person) == ("site-a", Role.SITE, False)
    _, value = tokens.create_token(db, "bob", "user", now=NOW)  # as `frazil token create`
    assert accounts.user(db, "bob").role is Role.USER
    assert tokens.verify_token(db, value, now=NOW).name == "bob"
    assert [(t.name, t.user) for t in tokens.list_tokens(db)] == [("site-a", None), ("bob", "bob")]
