"""Attempts' logs over real HTTP: appended chunks (a retried one, a gap, the cap), byte
ranges, files under the log directory, and the purge."""

from __future__ import annotations

import base64
import gzip
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from frazil.client import Client, PilotClient
from frazil.config import ServerSettings
from frazil.errors import LogGap, TooLarge
from frazil.pilot.logship import LogShipper
from frazil.server.main import ServerThread
from frazil.services import task_logs
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.store.log_files import LogFiles
from frazil.wire import Claim, Finish, LogChunk, SiteInfo, Slot, slot_fields
from tests.conftest import EXAMPLE, ROOT

SLOT = Slot(cpu=4, gpu=1, memory=16.0, disk=50.0, time=24.0)


def _running(live) -> tuple[Claim, PilotClient, Client]:
    """A claimed, started attempt of the example dataset, its pilot's client and a reader."""
    user, site = live.client(live.user), live.client(live.site)
    user.submit(EXAMPLE.read_text(), jobs=1)
    site.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    c = site.claim("site-a", SLOT, 1)[0]
    pilot = PilotClient(live.url, c.task_id, c.attempt, c.passkey, retry_for=0)
    pilot.start("node1")
    return c, pilot, user


def test_appends_are_idempotent_and_a_gap_names_the_offset_expected(live, tmp_path):
    c, pilot, user = _running(live)
    first = pilot.append_log(LogChunk.of("stdout", 0, b"hello\n"))
    assert first.size == 6 and first.limit == 32 * 1024 * 1024 and not first.error
    again = pilot.append_log(LogChunk.of("stdout", 0, b"hello\n"))  # its answer was lost
    assert again.size == 6
    longer = pilot.append_log(LogChunk.of("stdout", 0, b"hello\nworld\n", compress=False))
    assert longer.size == 12  # only the bytes past what the server held are added
    with pytest.raises(LogGap, match="expected offset 12, not 20"):
        pilot.append_log(LogChunk.of("stdout", 20, b"lost\n"))
    r = httpx.put(
        f"{live.url}/pilot/tasks/{c.task_id}/attempts/{c.attempt}/logs/stdout",
        json={"offset": 20, "data": base64.b64encode(b"x").decode()},
        headers={"Authorization": f"Passkey {c.passkey}"},
    )
    assert r.status_code == 409 and r.json()["error"] == "LogGap"
    assert not list((tmp_path / "logs").rglob("*.log"))  # a small log lives in its row
    (view,) = user.logs(c.task_id)
    assert (view.name, view.text, view.size) == ("stdout", "hello\nworld\n", 12)
    acks = pilot.heartbeat("running", [LogChunk.of("stderr", 0, b"warn\n"),
                                       LogChunk.of("stdout", 99, b"gap")])  # fmt: skip
    assert [(a.name, a.size) for a in acks] == [("stderr", 5), ("stdout", 12)]
    assert acks[0].error == "" and "expected offset 12" in acks[1].error


def test_a_chunk_must_be_what_it_says(live):
    c, _, _ = _running(live)
    url = f"{live.url}/pilot/tasks/{c.task_id}/attempts/{c.attempt}/logs"
    auth = {"Authorization": f"Passkey {c.passkey}"}
    bomb = base64.b64encode(gzip.compress(b"\0" * (5 * 1024 * 1024))).decode()
    r = httpx.put(f"{url}/stdout", json={"offset": 0, "data": bomb, "gzip": True}, headers=auth)
    assert r.status_code == 400 and "decodes to more than 4,194,304 bytes" in r.json()["detail"]
    r = httpx.put(f"{url}/stdout", json={"offset": 0, "data": "not base64!"}, headers=auth)
    assert r.status_code == 400 and "not base64" in r.json()["detail"]
    r = httpx.put(f"{url}/..", json={"offset": 0, "data": ""}, headers=auth)
    assert r.status_code in (400, 404, 405, 422)
    r = httpx.put(f"{url}/stdout", json={"text": "a", "offset": 0, "data": ""}, headers=auth)
    assert r.status_code == 422


@pytest.fixture
def capped(tmp_path: Path, sqlite_template: Path):
    """A live server whose logs hold at most 4 KiB each."""
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    db.migrate()
    settings = ServerSettings(log_dir=tmp_path / "logdir", max_log_bytes=4096)
    server = ServerThread(db, settings=settings)
    server.start()
    now = time.time()
    tokens = {role: create_token(db, name, role, now=now)[1] for role, name in (
        ("admin", "root"), ("user", "alice"), ("site", "site-a"))}  # fmt: skip

    class Live:
        url = server.url
        user = tokens["user"]
        site = tokens["site"]

        def client(self, token: str) -> Client:
            return Client(server.url, token, retry_for=0)

    yield Live()
    server.stop()
    db.dispose()


def test_a_log_past_the_cap_keeps_its_head_and_tail(capped, tmp_path):
    c, pilot, user = _running(capped)
    with pytest.raises(TooLarge, match=r"past the server's cap of 4,096 bytes per log"):
        pilot.append_log(LogChunk.of("stdout", 0, b"x" * 5000))
    source = tmp_path / "stdout"
    lines = [f"line {i:05d}\n".encode() for i in range(2000)]  # 22,000 bytes
    source.write_bytes(b"".join(lines[:300]))
    shipper = LogShipper({"stdout": source}, per_beat=512)
    for _ in range(10):  # beats while the task runs: the first half of the cap at most
        shipper.take(pilot.heartbeat("running", shipper.pending()))
    assert shipper.limit == 4096 and shipper.acked["stdout"] == 2048
    source.write_bytes(b"".join(lines))
    for chunk in shipper.rest():
        shipper.take([pilot.append_log(chunk)])
    part = user.log_part(c.task_id, "stdout")
    text = part.data.decode()
    assert part.total == 4096 == len(part.data)
    assert text.startswith("line 00000\n") and text.endswith("line 01999\n")
    head, _, tail = text.partition("\n[... ")
    assert len(head) == 2048 and head.endswith("line 00185\nli")  # the head, cut where it was
    left_out = int(tail.split(" bytes")[0].replace(",", ""))
    assert 2048 + left_out + len(tail.split("...]\n", 1)[1]) == 22000


def test_a_log_that_outgrows_its_row_or_is_not_text_moves_to_its_file(live, tmp_path):
    c, pilot, user = _running(live)
    folder = tmp_path / "logs" / str(user.task(c.task_id).task.dataset_id) / str(c.task_id) / "1"
    line = b"".join(f"line {i:05d}\n".encode() for i in range(6000))  # 66,000 bytes
    assert pilot.append_log(LogChunk.of("stdout", 0, line[:60000])).size == 60000
    assert not (folder / "stdout.log").exists()
    assert pilot.append_log(LogChunk.of("stdout", 60000, line[60000:])).size == 66000
    assert (folder / "stdout.log").read_bytes() == line  # its row's bytes came along
    assert pilot.append_log(LogChunk.of("stdout", 66000, b"more\n")).size == 66005
    binary = b"ok\n\0\xff\xfe not text\n"
    pilot.append_log(LogChunk.of("stderr", 0, binary[:3]))
    pilot.append_log(LogChunk.of("stderr", 3, binary[3:]))
    assert (folder / "stderr.log").read_bytes() == binary
    assert user.log_part(c.task_id, "stderr").data == binary
    assert user.log_part(c.task_id, "stdout", start=65994).data == b"05999\nmore\n"
    views = {v.name: v for v in user.logs(c.task_id)}
    assert views["stdout"].size == 66005 and views["stdout"].text.endswith("line 05999\nmore\n")
    assert len(views["stdout"].text.encode()) == 64 * 1024 - 1  # the row keeps the tail
    assert views["stderr"].text == "ok\n\ufffd\ufffd\ufffd not text\n"


def test_byte_ranges(live):
    c, pilot, user = _running(live)
    pilot.append_log(LogChunk.of("stdout", 0, b"0123456789"))
    url = f"{live.url}/tasks/{c.task_id}/logs/stdout"
    auth = {"Authorization": f"Bearer {live.user}"}
    whole = httpx.get(url, headers=auth)
    assert whole.status_code == 200 and whole.content == b"0123456789"
    assert whole.headers["Frazil-Attempt"] == "1"
    r = httpx.get(url, headers={**auth, "Range": "bytes=4-"})
    assert r.status_code == 206 and r.content == b"456789"
    assert r.headers["Content-Range"] == "bytes 4-9/10"
    r = httpx.get(url, headers={**auth, "Range": "bytes=2-4"}, params={"attempt": 1})
    assert (
        r.status_code == 206
        and r.content == b"234"
        and r.headers["Content-Range"] == "bytes 2-4/10"
    )
    r = httpx.get(url, headers={**auth, "Range": "bytes=10-"})
    assert r.status_code == 416 and r.headers["Content-Range"] == "bytes */10"
    assert httpx.get(url).status_code == 401  # a valid token is needed
    assert httpx.get(url, headers=auth, params={"attempt": 7}).status_code == 404
    part = user.log_part(c.task_id, "stdout", start=3)
    assert (part.start, part.total, part.data) == (3, 10, b"3456789")
    assert user.log_part(c.task_id, "stdout", start=10).data == b""
    assert user.log_part(c.task_id, "stderr").total == 0  # nothing sent of it yet


def test_purge_removes_the_logs_of_attempts_ended_before_then(live, tmp_path):
    c, pilot, user = _running(live)
    pilot.append_log(LogChunk.of("stdout", 0, b"a" * 1000))
    pilot.append_log(LogChunk.of("stderr", 0, b"b" * 24))
    files = LogFiles(tmp_path / "logs")
    running = task_logs.purge(live.db, files, time.time() + 3600, dry_run=True)
    assert running.logs == 0  # an attempt still running keeps its logs
    pilot.finish(Finish())
    ended = time.time()
    assert task_logs.purge(live.db, files, ended - 3600).logs == 0
    dry = task_logs.purge(live.db, files, ended + 1, dry_run=True)
    assert (dry.attempts, dry.logs, dry.bytes) == (1, 2, 1024)
    assert len(user.logs(c.task_id)) == 2
    done = task_logs.purge(live.db, files, ended + 1)
    assert done == dry
    assert user.logs(c.task_id) == []
    assert not any((tmp_path / "logs").rglob("*.log"))


def test_purge_logs_is_a_host_command(live, tmp_path):
    c, pilot, user = _running(live)
    pilot.append_log(LogChunk.of("stdout", 0, b"a" * 100))
    pilot.finish(Finish())
    time.sleep(0.01)  # the attempt ended before the command's "now"

    def frazil(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "FRAZIL_HOME": str(tmp_path), "PYTHONPATH": str(ROOT)}
        env.pop("FRAZIL_URL", None)
        argv = [sys.executable, "-m", "frazil", "purge-logs", *args]
        return subprocess.run(
            argv, check=False, capture_output=True, text=True, env=env, timeout=60
        )

    bad = frazil("--before", "yesterday")
    assert bad.returncode != 0 and "neither a date" in bad.stderr
    kept = frazil("--before", "2001-01-01")
    assert kept.returncode == 0 and "removed 0 logs of 0 attempts" in kept.stderr + kept.stdout
    dry = frazil("--before", "0s", "--dry-run")
    assert "would remove 1 logs of 1 attempts" in dry.stderr + dry.stdout
    assert "100 bytes" in dry.stderr + dry.stdout and len(user.logs(c.task_id)) == 1
    done = frazil("--before", "0s")
    assert done.returncode == 0 and "removed 1 logs of 1 attempts" in done.stderr + done.stdout
    assert user.logs(c.task_id) == [] and not any((tmp_path / "logs").rglob("*.log"))


def test_a_pilot_s_stderr_holds_its_own_records_not_a_line_per_request(live, tmp_path):
    key = tmp_path / "key"
    key.write_text("not-the-key\n")
    key.chmod(0o600)
    done = subprocess.run(
        [sys.executable, "-m", "frazil.pilot", "--pilot", "999", "--server", live.url,
         "--key-file", str(key), "--workdir", str(tmp_path / "work"), "--idle", "1"],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode != 0
    assert "frazil.pilot" in done.stderr and "999" in done.stderr, done.stderr
    assert "HTTP Request" not in done.stderr and "httpx" not in done.stderr, done.stderr
