"""People from the command line, against a real server: an administrator adds users and a
group, a group member with write controls another's dataset, one without is refused with
the missing right named, and ``whoami --dataset`` says why beforehand; a disabled user's
token stops working at once."""

from __future__ import annotations

import json
import time

from frazil.services.tokens import create_token
from tests.cli.conftest import runner
from tests.conftest import EXAMPLE


def test_an_administrator_shapes_groups_and_members_act_within_them(server, tmp_path):
    url, tokens, db = server
    admin = runner(tmp_path / "admin")
    admin("login", url, "--token", tokens["root"])
    assert "user carol (user, local) added" in admin("user", "add", "carol").stdout
    admin("user", "add", "rita", "--role", "readonly")
    admin("group", "add", "physics", "--description", "the physics working group")
    admin("group", "members", "physics", "--add", "bob", "--write")
    said = admin("group", "members", "physics", "--add", "carol").stdout
    assert "bob" in said and "carol" in said
    assert json.loads(admin("group", "members", "physics", "--json").stdout) == {
        "bob": True, "carol": False
    }  # fmt: skip
    users = {u["name"]: u for u in json.loads(admin("user", "list", "--json").stdout)}
    assert users["bob"]["groups"] == {"physics": True} and users["rita"]["role"] == "readonly"
    refused = admin("user", "add", "carol", ok=False).stderr
    assert "user 'carol' already exists" in refused

    alice = runner(tmp_path / "alice")
    alice("login", url, "--token", tokens["alice"])
    ds = json.loads(alice("submit", EXAMPLE, "--json", "--group", "physics").stdout)["dataset"]
    bob = runner(tmp_path / "bob")
    bob("login", url, "--token", tokens["bob"])
    assert "suspend:" in bob("suspend", ds).stdout
    carol_token = create_token(db, "carol-cli", "user", user="carol", now=time.time())[1]
    carol = runner(tmp_path / "carol")
    carol("login", url, "--token", carol_token)
    said = carol("whoami", "--dataset", ds).stdout
    assert "carol: user, token carol-cli of write scope" in said
    assert f"control dataset {ds}: no — 'carol' is in dataset {ds}'s group 'physics'" in said
    refused = carol("resume", ds, ok=False).stderr
    assert f"no control right on dataset {ds}" in refused and "without write" in refused
    # a user with a password logs in with it (asked for; here on stdin)
    admin("user", "passwd", "carol", input_="carol's password\ncarol's password\n")
    laptop = runner(tmp_path / "laptop")
    said = laptop("login", url, "--user", "carol", input_="carol's password\n").stdout
    assert "as carol (user)" in said
    assert (
        "wrong user name or password"
        in laptop("login", url, "--user", "carol", input_="not it\n", ok=False).stderr
    )
    assert "disabled" in admin("user", "disable", "carol").stdout
    assert "user 'carol' is disabled" in carol("status", ds, ok=False).stderr


def test_a_user_makes_lists_and_revokes_their_own_tokens(server, tmp_path):
    url, tokens, _ = server
    alice = runner(tmp_path / "alice")
    alice("login", url, "--token", tokens["alice"])
    made = alice("tokens", "create", "ci-job", "--scope", "read", "--days", 1).stdout.strip()
    assert made.startswith("frz_")
    listed = {t["name"]: t for t in json.loads(alice("tokens", "list", "--json").stdout)}
    assert set(listed) == {"alice", "ci-job"} and listed["ci-job"]["scope"] == "read"
    assert listed["ci-job"]["expires_at"] > time.time() + 86_000
    ci = runner(tmp_path / "ci")
    ci("login", url, "--token", made)
    assert "alice: user, token ci-job of read scope" in ci("whoami").stdout
    refused = ci("tokens", "create", "wider", "--scope", "write", ok=False).stderr
    assert "a read-scope token cannot make a write-scope one" in refused
    bob = runner(tmp_path / "bob")
    bob("login", url, "--token", tokens["bob"])
    theirs = listed["ci-job"]["id"]
    assert f"no token {theirs}" in bob("tokens", "revoke", theirs, ok=False).stderr
    assert f"token {theirs} revoked" in alice("tokens", "revoke", theirs).stdout
    assert "was revoked" in ci("whoami", ok=False).stderr
