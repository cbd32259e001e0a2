"""Who may read and control a dataset, over HTTP: its owner, its group's writers and
administrators control it; readers see it unless it is private; a refusal is a 403 that
names the missing right and why; ``GET /me/permissions`` says the same beforehand."""

from __future__ import annotations

import time

import pytest

from frazil.errors import AuthError, Forbidden, NotFound
from frazil.services import accounts
from frazil.services.tokens import create_token
from tests.server.test_api import EXAMPLE


@pytest.fixture
def people(live):
    """alice (the fixture's user) owns a dataset of group physics; bob writes in physics,
    carol only reads there, dave is in no group, rita is a readonly user."""
    now = time.time()
    accounts.add_group(live.db, "physics", now=now)
    made = {}
    for name, role in (("bob", "user"), ("carol", "user"), ("dave", "user"), ("rita", "readonly")):
        accounts.add_user(live.db, name, role, now=now)
        made[name] = live.client(create_token(live.db, f"{name}-cli", role, user=name, now=now)[1])
    accounts.set_member(live.db, "physics", "bob", write=True, now=now)
    accounts.set_member(live.db, "physics", "carol", write=False, now=now)
    made["alice"] = live.client(live.user)
    made["root"] = live.client(live.admin)
    made["site"] = live.client(live.site)
    return made


def test_control_belongs_to_the_owner_the_group_s_writers_and_administrators(live, people):
    ds = people["alice"].submit(EXAMPLE.read_text(), jobs=1, group="physics")
    for name in ("alice", "bob", "root"):
        assert people[name].act(ds, "suspend", reason=f"{name} looks") > 0
        people[name].act(ds, "resume")
    refusals = {
        "carol": "'carol' is in dataset {ds}'s group 'physics' without write permission",
        "dave": "dataset {ds} belongs to 'alice' and group 'physics': 'dave' is not its owner",
        "rita": "needs a user token; 'rita' is a readonly token",
        "site": "needs a user token; 'site-a' is a site token",
    }
    for name, why in refusals.items():
        with pytest.raises(Forbidden, match=why.format(ds=ds)):
            people[name].act(ds, "suspend")
        with pytest.raises(Forbidden):
            people[name].set_priority(ds, 5.0)
    with pytest.raises(Forbidden, match=f"no control right on dataset {ds}"):
        people["dave"].delete_dataset(ds)
    assert people["root"].dataset(ds).dataset.priority == 1.0  # nothing refused changed anything
    suspends = [e.actor for e in people["root"].events(ds, kind="suspend")]
    assert sorted(suspends) == ["admin:root", "user:alice", "user:bob"]


def test_a_private_dataset_is_seen_only_by_its_owner_group_and_administrators(live, people):
    open_ds = people["alice"].submit(EXAMPLE.read_text(), jobs=1)
    hidden = people["alice"].submit(EXAMPLE.read_text(), jobs=1, group="physics", private=True)
    for name in ("alice", "bob", "carol", "root"):
        assert people[name].dataset(hidden).dataset.id == hidden
        assert {d.id for d in people[name].datasets()} == {open_ds, hidden}
    for name in ("dave", "rita"):
        assert people[name].dataset(open_ds).dataset.id == open_ds
        with pytest.raises(Forbidden, match=f"dataset {hidden} is private to 'alice'"):
            people[name].dataset(hidden)
        with pytest.raises(Forbidden):
            people[name].tasks(hidden)
        assert [d.id for d in people[name].datasets()] == [open_ds]
        assert {e.dataset_id for e in people[name].events()} == {open_ds}
    task_id = people["alice"].tasks(hidden)[0].id
    with pytest.raises(Forbidden):
        people["dave"].task(task_id)
    with pytest.raises(Forbidden, match="'site-a' is a site: sites do not read datasets"):
        people["site"].dataset(open_ds)
    assert people["site"].datasets() == []
    with pytest.raises(NotFound):
        people["dave"].dataset(hidden + 100)


def test_me_permissions_says_what_the_caller_may_do_and_why(live, people):
    ds = people["alice"].submit(EXAMPLE.read_text(), jobs=1, group="physics")
    said = {
        name: {r.right: (r.allowed, r.why) for r in people[name].permissions(ds).rights}
        for name in ("alice", "bob", "carol", "rita", "root")
    }
    assert said["alice"]["control"] == (True, f"'alice' owns dataset {ds}")
    assert said["bob"]["control"] == (True, f"'bob' may write in dataset {ds}'s group 'physics'")
    assert said["carol"] == {
        "read": (True, f"dataset {ds} is not private"),
        "control": (
            False,
            f"'carol' is in dataset {ds}'s group 'physics' without write permission",
        ),
    }
    assert said["rita"]["control"] == (False, "'rita' is a readonly user: they change nothing")
    assert said["root"]["control"] == (True, "'root' is an administrator")
    me = people["carol"].permissions(ds).caller
    assert (me.name, me.role, me.scope, me.groups, me.token) == (
        "carol",
        "user",
        "write",
        {"physics": False},
        "carol-cli",
    )


def test_people_routes_are_for_administrators_and_a_password_for_its_owner(live, people):
    with pytest.raises(Forbidden, match="needs a admin token; 'alice' is a user token"):
        people["alice"].add_user("mallory", "admin")
    with pytest.raises(Forbidden):
        people["alice"].set_member("physics", "alice", write=True)
    with pytest.raises(Forbidden, match="only an administrator or 'bob' may set"):
        people["alice"].set_password("bob", "a new password")
    made = people["root"].add_user("erin", "user", password="erin's password")
    assert (made.name, made.role, made.source, made.groups) == ("erin", "user", "local", {})
    erin = live.client(create_token(live.db, "erin-cli", "user", user="erin", now=time.time())[1])
    erin.set_password("erin", "a better password")
    assert accounts.check_password(live.db, "erin", "a better password").name == "erin"
    assert [g.name for g in erin.groups()] == ["physics"]
    with pytest.raises(Forbidden, match="sites do not read groups"):
        people["site"].groups()


def test_disabling_a_user_stops_their_tokens_at_once_on_this_server(live, people):
    live.server.app.state.frazil.token_ttl = 60.0  # a cached token would live a minute
    assert people["bob"].whoami().name == "bob"
    people["root"].disable_user("bob")
    with pytest.raises(AuthError, match="user 'bob' is disabled"):
        people["bob"].whoami()
    people["root"].disable_user("bob", disabled=False)
    assert people["bob"].whoami().groups == {"physics": True}
    people["root"].set_member("physics", "bob", write=None)
    assert people["bob"].whoami().groups == {}


def test_changes_to_people_and_tokens_are_audit_events_for_administrators(live, people):
    people["root"].add_user("frank", "readonly")
    people["root"].set_member("physics", "frank", write=False)
    made = people["bob"].make_token("script", scope="read")
    people["bob"].revoke_my_token(made.id)
    people["root"].disable_user("frank")
    seen = [(e.actor, e.action, e.object_type, e.object_id)
            for e in reversed(people["root"].events(limit=5))]  # fmt: skip
    assert seen == [
        ("admin:root", "add-user", "user", "frank"),
        ("admin:root", "set-member", "group", "physics"),
        ("user:bob", "create-token", "token", "script"),
        ("user:bob", "revoke-token", "token", str(made.id)),
        ("admin:root", "disable-user", "user", "frank"),
    ]
    assert people["bob"].events(kind="create-token") == []  # not a dataset's: admins only
