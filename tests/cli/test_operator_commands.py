"""``frazil events``, ``frazil sites`` and ``frazil pilots``: the real program against a real
server on loopback whose clock the test moves; what they print into a pipe."""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime
from pathlib import Path

import pytest

from frazil.cli.operator_commands import since_time
from frazil.client import Client, PilotClient, PilotSession
from frazil.errors import FrazilError
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.wire import Failure, SiteInfo, Slot, slot_fields
from tests.cli.conftest import runner
from tests.conftest import EXAMPLE

DAY = 86_400.0
SLOT = Slot(cpu=4, gpu=1, memory=16.0, disk=50.0, time=24.0, os="el9",
            attributes={"cvmfs": True, "arch": "x86_64"})  # fmt: skip
WHY = "the detector group asked for a look at job 1 before more of it runs: " + "z" * 90


class Clock:
    """The server's clock: real time moved by ``ahead`` seconds."""

    def __init__(self) -> None:
        self.ahead = 0.0

    def __call__(self) -> float:
        return time.time() + self.ahead


@pytest.fixture
def served(tmp_path: Path):
    db = Database(f"sqlite:///{tmp_path / 'server.db'}")
    db.migrate()
    clock = Clock()
    thread = ServerThread(db, clock=clock).start()
    now = time.time()
    tokens = {name: create_token(db, name, role, now=now)[1] for name, role in (
        ("alice", "user"), ("site-a", "site"), ("site-b", "site"))}  # fmt: skip
    frazil = runner(tmp_path / "home", FRAZIL_URL=thread.url, FRAZIL_TOKEN=tokens["alice"])

    def client(name: str) -> Client:
        return Client(thread.url, tokens[name], retry_for=0)

    yield frazil, client, clock, thread.url
    thread.stop()
    db.dispose()


def _one_line_error(result, *words: str) -> None:
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    for w in words:
        assert w in result.stderr, result.stderr


def test_events_by_dataset_kind_and_time(served):
    frazil, client, clock, _ = served
    clock.ahead = -2 * DAY
    old = client("alice").submit(EXAMPLE.read_text(), jobs=1, alias="old")
    clock.ahead = 0.0
    sim = json.loads(frazil("submit", EXAMPLE, "--jobs", 2, "--name", "sim", "--json").stdout)
    sim = sim["dataset"]
    frazil("suspend", "sim", "--job", 1, "--reason", WHY)

    every = json.loads(frazil("events", "--json").stdout)
    assert [e["id"] for e in every] == sorted((e["id"] for e in every), reverse=True)
    assert {e["dataset_id"] for e in every} == {old, sim}
    assert {e["dataset_id"] for e in json.loads(frazil("events", "sim", "--json").stdout)} == {sim}
    (suspended,) = json.loads(frazil("events", "--kind", "suspend", "--json").stdout)
    assert (suspended["dataset_id"], suspended["actor"], suspended["count"]) == (
        sim, "user:alice", 6)  # fmt: skip
    assert json.loads(frazil("events", "old", "-k", "suspend", "--json").stdout) == []
    # from a time on: an age, or a local date and time
    for since in ("1d", "36h", datetime.fromtimestamp(time.time() - DAY).isoformat("T", "minutes")):
        recent = json.loads(frazil("events", "--since", since, "--json").stdout)
        assert {e["dataset_id"] for e in recent} == {sim}, since
    assert {e["dataset_id"] for e in json.loads(frazil("events", "--since", "1w", "--json").stdout)
            } == {old, sim}  # fmt: skip
    # into a pipe: aligned text, nothing cut
    lines = frazil("events", "sim", "--kind", "suspend").stdout.splitlines()
    assert lines[0].split()[:4] == ["id", "time", "actor", "dataset"]
    assert len(lines) == 2 and lines[1].endswith(WHY) and f"dataset {sim}" in lines[1]
    tsv = list(csv.reader(io.StringIO(frazil("events", "-o", "tsv").stdout), delimiter="\t"))
    assert len(tsv) == len(every) + 1 and tsv[1][5] == "suspend" and tsv[1][9] == WHY
    picked = frazil("events", "--columns", "action,dataset", "--limit", 1)
    assert picked.stdout.splitlines() == ["action   dataset", f"suspend  {sim:>7}"]
    assert f"1 of {len(every)}: use --limit" in picked.stderr
    # what could match nothing is an error, of one line
    _one_line_error(frazil("events", "--kind", "bogus", ok=False),
                    "no kind of event 'bogus'; kinds:", "suspend", "submit")  # fmt: skip
    _one_line_error(frazil("events", "--since", "yesterday", ok=False),
                    "--since 'yesterday'", "2026-12-01T10:00", "30m")  # fmt: skip
    _one_line_error(frazil("events", "nope", ok=False), "no dataset 'nope'")


def test_sites_with_running_queued_and_failed_attempts(served):
    frazil, client, clock, url = served
    client("alice").submit(EXAMPLE.read_text(), jobs=3)
    a, b = client("site-a"), client("site-b")
    a.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    clock.ahead = -3 * 3600.0
    b.register_site("site-b", SiteInfo(cpu=2))
    clock.ahead = 0.0
    claims = a.claim("site-a", SLOT, 4)
    started = [PilotClient(url, c.task_id, c.attempt, c.passkey, retry_for=0) for c in claims[:3]]
    for p in started:
        p.start("node1")
    started[0].fail(Failure("segfault", exit_code=139))
    started[1].fail(Failure("out of time", timeout=True))

    statuses = {s["name"]: s for s in json.loads(frazil("sites", "--json").stdout)}
    assert [statuses["site-a"][k] for k in ("running", "queued", "failed")] == [1, 1, 2]
    assert [statuses["site-b"][k] for k in ("running", "queued", "failed")] == [0, 0, 0]
    assert statuses["site-a"]["attributes"] == {"cvmfs": True, "arch": "x86_64"}
    lines = frazil("sites").stdout.splitlines()
    assert lines[0].split()[:3] == ["site", "last", "contact"] and len(lines) == 3
    assert "arch=x86_64, cvmfs=true" in lines[1] and lines[1].split()[-3:] == ["1", "1", "2"]
    assert lines[2].startswith("site-b") and " 3h " in lines[2]
    tsv = list(csv.reader(io.StringIO(frazil("sites", "-o", "tsv").stdout), delimiter="\t"))
    assert tsv[0][-3:] == ["running", "queued", "failed 1h"]
    assert tsv[1][:1] + tsv[1][3:9] == ["site-a", "4", "1", "16", "50", "24", "el9"]
    picked = frazil("sites", "--columns", "site,failed 1h").stdout.splitlines()
    assert [line.split() for line in picked] == [["site", "failed", "1h"], ["site-a", "2"],
                                                 ["site-b", "0"]]  # fmt: skip


def test_pilots_by_site(served):
    frazil, client, _, url = served
    client("alice").submit(EXAMPLE.read_text(), jobs=1)
    a, b = client("site-a"), client("site-b")
    a.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    b.register_site("site-b", SiteInfo(cpu=1))
    first = a.create_pilot("site-a", SLOT)
    a.record_pilot_batch_id("site-a", first.pilot_id, "slurm-4711")
    PilotSession(url, first.pilot_id, first.key, retry_for=0).exchange(limit=2, host="c17-n3")
    second = a.create_pilot("site-a", SLOT)
    a.pilot_ended("site-a", second.pilot_id, "its batch job was cancelled by the administrator")
    there = b.create_pilot("site-b", Slot(cpu=1))

    listed = json.loads(frazil("pilots", "--json").stdout)
    assert [p["id"] for p in listed] == [there.pilot_id, second.pilot_id, first.pilot_id]
    mine = json.loads(frazil("pilots", "--site", "site-a", "--json").stdout)
    assert [(p["id"], p["state"], p["running"]) for p in mine] == [
        (second.pilot_id, "ended", 0), (first.pilot_id, "open", 2)]  # fmt: skip
    assert "key_hash" not in mine[0]
    opened = json.loads(frazil("pilots", "-s", "site-a", "--open", "--json").stdout)
    assert [p["id"] for p in opened] == [first.pilot_id]
    lines = frazil("pilots", "--site", "site-a").stdout.splitlines()
    assert len(lines) == 3 and lines[1].endswith("its batch job was cancelled by the administrator")
    assert "c17-n3" in lines[2] and "slurm-4711" in lines[2]
    short = frazil("pilots", "--limit", 1)
    assert len(short.stdout.splitlines()) == 2 and "1 of 3: use --limit" in short.stderr
    _one_line_error(frazil("pilots", "--site", "site-c", ok=False),
                    "no site 'site-c' (sites: site-a, site-b)")  # fmt: skip


def test_since_is_an_age_or_a_date_and_time():
    now = 1_800_000_000.0
    assert since_time("30m", now) == now - 1800
    assert since_time("2h", now) == now - 7200
    assert since_time("1.5d", now) == now - 1.5 * DAY
    assert since_time("1w", now) == now - 7 * DAY
    assert since_time("2026-12-01", now) == datetime(2026, 12, 1).timestamp()
    assert since_time("2026-12-01T10:00", now) == datetime(2026, 12, 1, 10).timestamp()
    assert since_time("2026-12-01T10:00+00:00", now) == 1_796_119_200.0
    for bad in ("yesterday", "", "2h ago", "-1d", "1y", "2026-13-01", "9" * 400 + "w"):
        with pytest.raises(FrazilError, match=r"not a date and time .* nor an age"):
            since_time(bad, now)
