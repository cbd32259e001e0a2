"""What an operator reads over the API: the audit trail (``GET /events``), the sites with
their work (``GET /sites/status``) and the multi-task pilots (``GET /pilots``), on a real
server on loopback with a clock the test moves."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from frazil.client import Client, PilotClient, PilotSession
from frazil.errors import BadRequest, NotFound
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.wire import TOTAL_HEADER, EventView, Failure, PilotView, SiteInfo, Slot, slot_fields
from tests.conftest import EXAMPLE

SLOT = Slot(cpu=4, gpu=1, memory=16.0, disk=50.0, time=24.0, os="el9",
            attributes={"cvmfs": True, "arch": "x86_64"})  # fmt: skip
HOUR = 3600.0


class Clock:
    """The server's clock: real time moved by ``ahead`` seconds (its daemons keep real time)."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path):
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    clock = Clock()
    server = ServerThread(db, clock=clock)
    server.app.state.frazil.token_ttl = 0.0
    server.start()
    now = time.time()
    tokens = {name: create_token(db, name, role, now=now)[1] for name, role in (
        ("alice", "user"), ("site-a", "site"), ("site-b", "site"))}  # fmt: skip

    def client(name: str) -> Client:
        return Client(server.url, tokens[name], retry_for=0)

    yield client, clock, server.url, tokens
    server.stop()
    db.dispose()


def test_the_audit_trail_by_dataset_kind_and_time(served):
    client, clock, _, _ = served
    user = client("alice")
    clock.ahead = -2 * 86_400  # two days ago
    first = user.submit(EXAMPLE.read_text(), jobs=2, alias="sim")
    clock.ahead = 0.0
    other = user.submit(EXAMPLE.read_text(), jobs=1, alias="other")
    assert user.act("sim", "suspend", job=1, reason="look at job 1") == 6
    user.act("sim", "resume", job=1)

    page = user.events_page()
    assert page.total == len(page.items) >= 4
    assert [e.id for e in page.items] == sorted((e.id for e in page.items), reverse=True)
    assert {e.actor for e in page.items} == {"user:alice"}
    assert [e.action for e in user.events("sim")][:3] == ["resume", "suspend", "submit"]
    assert {e.dataset_id for e in user.events("sim")} == {first}
    (suspended,) = user.events(kind="suspend")
    assert (suspended.dataset_id, suspended.object_type, suspended.object_id) == (
        first, "dataset", str(first))  # fmt: skip
    assert (suspended.count, suspended.reason) == (6, "look at job 1")
    assert user.events(other, kind="suspend") == []
    # from a time on: the first submission is two days old
    recent = user.events(since=time.time() - 86_400)
    assert {e.dataset_id for e in recent if e.action == "submit"} == {other}
    assert [e.action for e in user.events("sim", since=time.time() - 86_400)] == [
        "resume", "suspend"]  # fmt: skip
    assert user.events(since=time.time() + 86_400) == []
    # paged, with the total in a header
    two = user.events_page(limit=2, offset=1)
    assert [e.id for e in two.items] == [e.id for e in page.items[1:3]]
    assert two.total == page.total
    # an unknown kind or dataset is an error, not an empty page
    with pytest.raises(BadRequest, match=r"no kind of event 'bogus'; kinds: .*suspend"):
        user.events(kind="bogus")
    with pytest.raises(NotFound, match="nope"):
        user.events("nope")
    # a dataset's own trail has the same shape, most recent first
    trail = user.request("GET", "/datasets/sim/events")
    assert [e["action"] for e in trail][:2] == ["resume", "suspend"]
    assert set(trail[0]) == set(EventView.__dataclass_fields__)
    # a person with any role reads it; a site reads no dataset's events
    assert client("site-a").events_page(limit=1).total == 0


def test_sites_with_their_running_queued_and_failed_attempts(served):
    client, clock, url, _ = served
    user, a, b = client("alice"), client("site-a"), client("site-b")
    user.submit(EXAMPLE.read_text(), jobs=3)
    a.register_site("site-a", SiteInfo(**slot_fields(SLOT), info={"plugin": "slurm"}))
    clock.ahead = -600.0  # site-b was last heard from ten minutes ago
    b.register_site("site-b", SiteInfo(cpu=1))
    clock.ahead = 0.0
    claims = a.claim("site-a", SLOT, 4)
    assert len(claims) == 4
    pilots = [PilotClient(url, c.task_id, c.attempt, c.passkey, retry_for=0) for c in claims]
    for p in pilots[:3]:
        p.start("node1")
    pilots[0].fail(Failure("segfault", exit_code=139))
    pilots[1].fail(Failure("preempted", counts=False))  # the batch system's doing: not counted

    statuses = {s.name: s for s in user.site_statuses()}
    assert list(statuses) == ["site-a", "site-b"]
    sa, sb = statuses["site-a"], statuses["site-b"]
    assert (sa.running, sa.queued, sa.failed) == (1, 1, 1)
    assert (sb.running, sb.queued, sb.failed) == (0, 0, 0)
    assert (sa.cpu, sa.gpu, sa.memory, sa.disk, sa.time, sa.os) == (4, 1, 16.0, 50.0, 24.0, "el9")
    assert sa.attributes == {"cvmfs": True, "arch": "x86_64"} and sa.info["plugin"] == "slurm"
    assert 0 <= sa.age < 600 <= sb.age
    # an hour later the failure is no longer recent
    clock.ahead = 2 * HOUR
    later = {s.name: s for s in a.site_statuses()}
    assert (later["site-a"].running, later["site-a"].failed) == (1, 0)
    assert later["site-a"].age >= 2 * HOUR
    # GET /sites is as it was
    assert [s["name"] for s in user.request("GET", "/sites")] == ["site-a", "site-b"]
    assert "running" not in user.request("GET", "/sites")[0]


def test_pilots_are_typed_newest_first_by_site(served):
    client, _, url, _ = served
    user, a, b = client("alice"), client("site-a"), client("site-b")
    user.submit(EXAMPLE.read_text(), jobs=1)
    a.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    b.register_site("site-b", SiteInfo(cpu=1))
    first = a.create_pilot("site-a", SLOT)
    a.record_pilot_batch_id("site-a", first.pilot_id, "slurm-17")
    second = a.create_pilot("site-a", SLOT)
    elsewhere = b.create_pilot("site-b", Slot(cpu=1))
    taken = PilotSession(url, first.pilot_id, first.key, retry_for=0).exchange(limit=2, host="n1")
    assert len(taken.tasks) == 2
    assert b.pilot_ended("site-b", elsewhere.pilot_id, "batch job gone") == 0

    every = user.pilots()
    assert [p.id for p in every] == [elsewhere.pilot_id, second.pilot_id, first.pilot_id]
    mine = user.pilots("site-a")
    assert [p.id for p in mine] == [second.pilot_id, first.pilot_id]
    p = mine[1]
    assert isinstance(p, PilotView) and not hasattr(p, "key_hash")
    assert (p.state, p.batch_id, p.host, p.tasks, p.running) == ("open", "slurm-17", "n1", 2, 2)
    assert (p.cpu, p.gpu, p.memory, p.os, p.attributes) == (
        4,
        1,
        16.0,
        "el9",
        dict(SLOT.attributes),
    )
    assert mine[0].running == 0
    ended = user.pilots("site-b")[0]
    assert (ended.state, ended.reason) == ("ended", "batch job gone")
    assert [p.id for p in user.pilots(open_only=True)] == [second.pilot_id, first.pilot_id]
    page = user.pilots_page(limit=1)
    assert [p.id for p in page.items] == [elsewhere.pilot_id] and page.total == 3
    with pytest.raises(NotFound, match=r"no site 'site-c' \(sites: site-a, site-b\)"):
        user.pilots("site-c")
    answer = user.send("GET", "/pilots", params={"site": "site-a", "limit": 1})
    assert answer.headers[TOTAL_HEADER] == "2" and len(answer.json()) == 1
