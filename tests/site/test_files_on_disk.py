"""A site's files on disk: secrets never written through a planted link, no shared default."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from frazil.client import Client
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.site.config import Queue, SiteConfig, Storage
from frazil.site.daemon import SiteDaemon
from frazil.site.main import build
from frazil.site.mode import secret as _secret
from frazil.store import Database


def test_a_secret_is_never_written_through_a_planted_link(tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("precious")
    passkey = tmp_path / "passkey"
    passkey.symlink_to(victim)
    with pytest.raises(FileExistsError, match="refusing to write a secret"):
        _secret(passkey, "the-secret")
    assert victim.read_text() == "precious"
    dangling = tmp_path / "key"
    dangling.symlink_to(tmp_path / "would-be-created")
    with pytest.raises(FileExistsError):
        _secret(dangling, "the-secret")
    assert not (tmp_path / "would-be-created").exists()
    # a file an earlier submission left is replaced, never written into
    stale = tmp_path / "reservation"
    stale.write_text("old")
    linked = tmp_path / "hardlink"
    linked.hardlink_to(stale)
    assert _secret(stale, "new").read_text() == "new"
    assert linked.read_text() == "old"
    assert stat_mode(stale) == 0o600


def stat_mode(path: Path) -> int:
    return os.stat(path).st_mode & 0o777


def test_a_site_refuses_to_submit_through_a_link_planted_at_the_passkey(tmp_path, sqlite_template):
    """A real server and site: the passkey path of the task it is about to claim holds a
    link; the submission fails, the link's target is untouched, the task goes back."""
    path = tmp_path / "frazil.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    now = time.time()
    _, user = create_token(db, "tester", "user", now=now)
    _, site_token = create_token(db, "local", "site", now=now)
    server = ServerThread(db).start()
    try:
        client = Client(server.url, user, retry_for=5)
        config = {"tasks": [{"name": "t", "trays": [{"modules": [{"src": "true"}]}]}]}
        dataset = client.submit(config, jobs=1)
        scratch = tmp_path / "scratch"
        site = build(
            SiteConfig(
                name="local", server=server.url, token=site_token,
                queue=Queue(options={"cpus": 1, "memory": 1.0}), storage=Storage(scratch=scratch),
            )
        )  # fmt: skip
        site.register()
        (task,) = client.tasks(dataset)
        workdir = scratch / str(dataset) / "0" / f"t-{task.id}-1"
        workdir.mkdir(parents=True)
        victim = tmp_path / "victim"
        victim.write_text("precious")
        (workdir / "passkey").symlink_to(victim)
        with pytest.raises(FileExistsError):
            site.step(time.time())
        assert victim.read_text() == "precious"
        assert not site.running
        assert client.tasks(dataset)[0].status == "waiting"  # handed back, no failure
    finally:
        server.stop()


def test_no_default_lies_under_a_shared_tmp(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAZIL_HOME", str(tmp_path / "home"))
    storage = SiteConfig(name="s", server="http://x").storage
    assert storage.scratch == tmp_path / "home" / "scratch"
    assert storage.cache is None
    monkeypatch.delenv("FRAZIL_HOME")
    scratch = SiteConfig(name="s", server="http://x").storage.scratch
    assert scratch == Path.home() / ".frazil" / "scratch"
    assert not scratch.is_relative_to("/tmp") and not scratch.is_relative_to("/var/tmp")
    # a scratch the site makes is private to it
    config = SiteConfig(name="s", server="http://x", storage=Storage(scratch=tmp_path / "s"))
    site = SiteDaemon(config, None, None)  # type: ignore[arg-type]
    assert site._workdir("pilots", "1") == tmp_path / "s" / "pilots" / "1"
    assert stat_mode(tmp_path / "s") == 0o700
