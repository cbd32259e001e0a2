"""The rule of who may read and control a dataset, on SQLite, PostgreSQL and MariaDB: what
``decide`` answers for one dataset and what ``visible`` selects as SQL must agree for every
kind of caller."""

from frazil.services import permissions, queries
from frazil.services.permissions import Right
from frazil.services.submit import submit_dataset
from frazil.services.tokens import Caller, Role, Scope
from tests.services.conftest import make_config

NOW = 5_000_000.0
CALLERS = [
    Caller("alice", Role.USER, Scope.WRITE),
    Caller("bob", Role.USER, Scope.WRITE, {"physics": True}),
    Caller("carol", Role.USER, Scope.WRITE, {"physics": False}),
    Caller("dave", Role.USER, Scope.WRITE, {"optics": True}),
    Caller("rita", Role.READONLY, Scope.READ),
    Caller("root", Role.ADMIN, Scope.ADMIN),
    Caller("root", Role.ADMIN, Scope.READ),
    Caller("site-a", Role.SITE, Scope.WRITE),
]


def test_visible_selects_exactly_what_decide_lets_each_caller_read(db):
    made = {}
    for name, group, private in [("open", "", False), ("team", "physics", False),
                                 ("secret", "physics", True), ("mine", "", True)]:  # fmt: skip
        done = submit_dataset(
            db, make_config("flat", 1), jobs=1, now=NOW, owner="alice", group=group,
            private=private, alias=name,
        )  # fmt: skip
        made[name] = done.id
    for who in CALLERS:
        listed = {d.id for d in queries.list_datasets(db, where=permissions.visible(who))}
        allowed = {
            i for i in made.values()
            if permissions.decide(who, permissions.ownership(db, i), Right.READ).allowed
        }  # fmt: skip
        assert listed == allowed, who
    assert {d.alias for d in queries.list_datasets(db, where=permissions.visible(CALLERS[3]))} == {
        "open", "team"
    }  # fmt: skip
    control = {
        (who.name, who.scope.value): sorted(
            n for n, i in made.items()
            if permissions.decide(who, permissions.ownership(db, i), Right.CONTROL).allowed
        )
        for who in CALLERS
    }  # fmt: skip
    assert control == {
        ("alice", "write"): ["mine", "open", "secret", "team"],
        ("bob", "write"): ["secret", "team"],
        ("carol", "write"): [],
        ("dave", "write"): [],
        ("rita", "read"): [],
        ("root", "admin"): ["mine", "open", "secret", "team"],
        ("root", "read"): [],
        ("site-a", "write"): [],
    }
