"""Who may read and control a dataset, over HTTP: its owner, its group's writers and
administrators control it; readers see it unless it is private; a refusal is a 403 that
names the missing right and why; ``GET /me/permissions`` says the same beforehand."""

from __future__ import annotations

import time

import pytest

from frazil.errors import Forbidden, NotFound
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
    accounts.set_member(live.db, "physics", "bob", write=True)
    accounts.set_member(live.db, "physics", "carol", write=False)
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
