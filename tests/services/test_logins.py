"""Logging in with a name and password: a token that expires, an audit event for every
login and failed login, and a limit on failures per user name and per address that every
server of the database counts alike (the audit trail is the counter)."""

import pytest

from frazil.errors import AuthError, TooManyAttempts
from frazil.services import accounts, logins, queries, tokens
from frazil.services.logins import LoginLimits

NOW = 5_000_000.0
LIMITS = LoginLimits(failures=3, window=60.0, token_life=3_600.0)


def test_a_login_makes_a_token_that_expires_and_leaves_an_event(db):
    accounts.add_user(db, "alice", "user", now=NOW, password="correct horse")
    info, value = logins.login(
        db, "alice", "correct horse", address="10.0.0.1", now=NOW, token_name="laptop",
        limits=LIMITS,
    )  # fmt: skip
    assert (info.user, info.name, info.expires_at) == ("alice", "laptop", NOW + 3_600.0)
    assert tokens.verify_token(db, value, now=NOW + 10).name == "alice"
    with pytest.raises(AuthError, match="has expired"):
        tokens.verify_token(db, value, now=NOW + 3_600.0)
    (seen,) = queries.events_page(db, kind="login").items
    assert (seen.actor, seen.object_type, seen.object_id) == ("user:alice", "user", "alice")
    assert seen.reason == "10.0.0.1; token laptop"


def test_failures_are_limited_per_user_and_per_address_even_with_the_right_password(db):
    accounts.add_user(db, "alice", "user", now=NOW, password="correct horse")
    accounts.add_user(db, "bob", "user", now=NOW, password="battery staple")

    def attempt(name: str, password: str, address: str, at: float = NOW) -> None:
        logins.login(db, name, password, address=address, now=at, limits=LIMITS)

    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        with pytest.raises(AuthError, match="wrong user name or password"):
            attempt("alice", "guess", address)
    with pytest.raises(TooManyAttempts, match="too many failed logins for user 'alice'"):
        attempt("alice", "correct horse", "10.0.0.9")
    attempt("alice", "correct horse", "10.0.0.9", at=NOW + 61)  # the window moved on
    for name in ("nobody", "carol", "dave"):  # one address trying many names
        with pytest.raises(AuthError, match="wrong user name or password"):
            attempt(name, "guess", "10.6.6.6")
    with pytest.raises(TooManyAttempts, match=r"for address 10\.6\.6\.6"):
        attempt("bob", "battery staple", "10.6.6.6")
    attempt("bob", "battery staple", "10.0.0.7")
    failed = queries.events_page(db, kind="failed-login").items
    assert len(failed) == 6 and {e.actor for e in failed} == {"anonymous"}
