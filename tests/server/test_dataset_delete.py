"""Deleting a dataset over the API (every row of its own, nothing of the others, the owner
or an administrator only), its pilots' reports afterwards, and a config's versions."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from frazil.client import Client, PilotClient, PilotSession, send_heartbeats
from frazil.errors import Forbidden, NotFound, Rejected, StaleAttempt
from frazil.services.tokens import create_token
from frazil.store.schema import (
    config_tray,
    dataset_config,
    metadata,
    run,
    task,
    task_attempt,
)
from frazil.wire import (
    Beat,
    FileRecord,
    Finish,
    Report,
    SiteInfo,
    Slot,
    Usage,
    slot_fields,
)
from tests.conftest import EXAMPLE

SLOT = Slot(cpu=4, gpu=1, memory=16.0, disk=50.0, time=24.0)
Rows = dict[str, set[tuple[Any, ...]]]


def _rows(db) -> Rows:
    """Every row of every table."""
    with db.read() as conn:
        return {t.name: {tuple(r) for r in conn.execute(select(t))} for t in metadata.sorted_tables}


def _owned(db, dataset_id: int) -> Rows:
    """The rows that belong to a dataset: those naming it, and those hanging off its tasks,
    attempts, config versions and trays."""
    with db.read() as conn:
        tasks = set(conn.scalars(select(task.c.id).where(task.c.dataset_id == dataset_id)))
        attempts = set(
            conn.scalars(select(task_attempt.c.id).where(task_attempt.c.task_id.in_(tasks)))
        )
        configs = set(
            conn.scalars(
                select(dataset_config.c.id).where(dataset_config.c.dataset_id == dataset_id)
            )
        )
        trays = set(
            conn.scalars(select(config_tray.c.id).where(config_tray.c.config_id.in_(configs)))
        )
        owned: Rows = {}
        for t in metadata.sorted_tables:
            mine = set()
            for r in conn.execute(select(t)):
                m = r._mapping
                if (
                    (t.name == "dataset" and m["id"] == dataset_id)
                    or m.get("dataset_id") == dataset_id
                    or m.get("task_id") in tasks
                    or m.get("attempt_id") in attempts
                    or m.get("config_id") in configs
                    or m.get("tray_id") in trays
                ):
                    mine.add(tuple(r))
            owned[t.name] = mine
    return owned


def _work(live, user: Client, datasets: list[int]) -> None:
    """Give the datasets attempts with statistics, files and logs, a second config version
    and a run each."""
    site = live.client(live.site)
    for c in site.claim("site-a", SLOT, 100):
        pilot = PilotClient(live.url, c.task_id, c.attempt, c.passkey, retry_for=0)
        pilot.start("node1")
        pilot.log("stdout", f"task {c.task_id}")
        out = FileRecord(f"file:///tmp/{c.task_id}", "output", size=3)
        pilot.finish(Finish(Usage(wall_time=2.0), {"events": 7.0}, (out,)))
    changed = EXAMPLE.read_text().replace("nevents: 2000", "nevents: 3000")
    for d in datasets:
        assert user.edit_config(d, changed, "more events").version == 2
        with live.db.engine.begin() as conn:
            conn.execute(insert(run).values(dataset_id=d, run_number=d, date="2026-12-04"))


def test_deletion_leaves_no_row_of_the_dataset_and_every_row_of_the_others(live):
    user = live.client(live.user)
    live.client().register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    gone = user.submit(EXAMPLE.read_text(), jobs=3, alias="gone")
    kept = user.submit(EXAMPLE.read_text(), jobs=2, alias="kept")
    _work(live, user, [gone, kept])
    owned = _owned(live.db, gone)
    for name in ("dataset", "dataset_config", "config_tray", "config_module", "config_parameter",
                 "task_dependency", "job", "task", "task_attempt", "task_stat", "file",
                 "task_log", "run", "event"):  # fmt: skip
        assert owned[name], f"the test gives the dataset no {name} row"
    before = _rows(live.db)

    done = user.delete_dataset("gone", reason="a typo in the config")

    assert (done.id, done.alias, done.jobs, done.tasks) == (gone, "gone", 3, 18)
    assert done.attempts == len(owned["task_attempt"]) > 0
    after = _rows(live.db)
    for name, rows in before.items():
        if name == "event":
            continue
        assert after[name] == rows - owned[name], name
    # the audit trail keeps everything it had, and the deletion
    (new,) = after["event"] - before["event"]
    assert before["event"] <= after["event"]
    event = dict(zip(metadata.tables["event"].c.keys(), new, strict=True))
    assert (event["action"], event["actor"], event["dataset_id"]) == ("delete", "user:alice", gone)
    assert event["reason"].endswith(": a typo in the config") and "3 jobs" in event["reason"]
    with live.db.read() as conn:
        for t in metadata.sorted_tables:
            if "dataset_id" in t.c and t.name != "event":
                left = conn.execute(select(t).where(t.c.dataset_id == gone)).all()
                assert left == [], t.name
    with pytest.raises(NotFound):
        user.dataset("gone")
    assert [d.id for d in user.datasets()] == [kept]
    assert user.config_versions(kept)[-1].version == 2


def test_only_the_owner_or_an_administrator_may_delete(live):
    alice = live.client(live.user)
    _, bob_token = create_token(live.db, "bob", "user", now=time.time())
    bob = live.client(bob_token)
    mine = alice.submit(EXAMPLE.read_text(), jobs=1)
    theirs = bob.submit(EXAMPLE.read_text(), jobs=1)
    refused = f"no control right on dataset {mine}: dataset {mine} belongs to 'alice': 'bob' is"
    with pytest.raises(Forbidden, match=refused):
        bob.delete_dataset(mine)
    r = httpx.delete(
        f"{live.url}/datasets/{mine}", headers={"Authorization": f"Bearer {bob_token}"}
    )
    assert (r.status_code, r.json()["error"]) == (403, "Forbidden")
    with pytest.raises(Forbidden, match="needs a user token"):
        live.client(live.site).delete_dataset(mine)
    assert alice.dataset(mine).dataset.id == mine  # still there
    with pytest.raises(NotFound, match="no dataset 'nope'"):
        alice.delete_dataset("nope")
    assert live.client().delete_dataset(theirs).id == theirs  # an administrator may
    assert alice.delete_dataset(mine).id == mine
    assert alice.datasets() == []
    with pytest.raises(NotFound):
        alice.delete_dataset(mine)


def test_a_deleted_dataset_frees_its_owner_s_quota(live):
    alice, admin = live.client(live.user), live.client()
    d = alice.submit(EXAMPLE.read_text(), jobs=4)
    assert admin.quota("alice").usage.jobs == 4
    alice.delete_dataset(d)
    assert admin.quota("alice").usage.jobs == 0


def test_the_pilots_of_a_deleted_dataset_are_refused_cleanly(live):
    user, site = live.client(live.user), live.client(live.site)
    live.client().register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    d = user.submit(EXAMPLE.read_text(), jobs=2)
    one, two = site.claim("site-a", SLOT, 2)
    pilot = PilotClient(live.url, one.task_id, one.attempt, one.passkey, retry_for=0)
    pilot.start("node1")
    made = site.create_pilot("site-a", SLOT)
    session = PilotSession(live.url, made.pilot_id, made.key, retry_for=0)
    (handed,) = session.exchange(limit=1, host="node2").tasks

    user.delete_dataset(d)

    # a pilot of its own: each report is a stale attempt (409), so it stops without a report
    for call in (
        lambda: pilot.heartbeat("running"),
        lambda: pilot.log("stdout", "late"),
        lambda: pilot.finish(Finish(Usage(wall_time=1.0))),
        pilot.spec,
    ):
        with pytest.raises(StaleAttempt, match="does not exist"):
            call()
    r = httpx.post(
        f"{live.url}/pilot/tasks/{one.task_id}/attempts/{one.attempt}/heartbeat",
        json={"phase": None}, headers={"Authorization": f"Passkey {one.passkey}"},
    )  # fmt: skip
    assert (r.status_code, r.json()["error"]) == (409, "StaleAttempt")
    beats = [Beat(one.task_id, one.attempt, one.passkey)]
    assert send_heartbeats(live.url, beats, retry_for=0) == ["stale"]
    # a multi-task pilot: its report is answered "stale", and it goes on
    report = Report.finished(handed.key, Finish(Usage(wall_time=1.0)), {"stdout": "x"})
    answer = session.exchange([report], limit=1)
    assert answer.results == ("stale",) and answer.tasks == ()
    # the site: its batch jobs are stale, and a lost one is not found
    pairs = [(one.task_id, one.attempt), (two.task_id, two.attempt)]
    assert site.stale_attempts("site-a", pairs) == pairs
    with pytest.raises(NotFound):
        site.lost("site-a", two.task_id, two.attempt, "batch job vanished")


def test_config_versions_say_when_who_and_why(live):
    alice, admin = live.client(live.user), live.client()
    d = alice.submit(EXAMPLE.read_text(), jobs=1)
    (first,) = alice.config_versions(d)
    assert (first.version, first.created_by, first.comment, first.current) == (
        1, "user:alice", "submitted", True,
    )  # fmt: skip
    changed = EXAMPLE.read_text().replace("nevents: 2000", "nevents: 3000")
    assert admin.edit_config(d, changed, "more events", base=1).version == 2
    versions = alice.config_versions(d)
    assert [(v.version, v.created_by, v.comment, v.current) for v in versions] == [
        (1, "user:alice", "submitted", False), (2, "admin:root", "more events", True),
    ]  # fmt: skip
    assert versions[1].created_at >= versions[0].created_at
    # an edit begun on version 1 would undo version 2 unseen: refused, nothing written
    with pytest.raises(Rejected, match="at config version 2, not 1"):
        alice.edit_config(d, EXAMPLE.read_text(), "back", base=1)
    assert len(alice.config_versions(d)) == 2
    assert alice.config(d, 1)["steering"]["parameters"]["nevents"] == 2000
    with pytest.raises(NotFound):
        alice.config_versions("nope")
