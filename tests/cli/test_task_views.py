"""What an operator reads about a task and a dataset: ``show task`` with the files each
attempt read and wrote and its logs, ``logs``, ``status --by-site`` and ``--watch``; the real
program on the embedded database."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from frazil.model.records import SiteResources
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.task_logs import store_log
from frazil.store import Database
from frazil.wire import Failure, FileRecord, Finish, Usage
from tests.cli.conftest import runner
from tests.conftest import EXAMPLE

TRACEBACK = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: bad seed\n'


def _ran(tmp_path):
    """One dataset; task 1 failed once (a traceback) and then completed with files; task 2
    is being processed at site-b."""
    frazil = runner(tmp_path / "home")
    frazil("init")
    frazil("submit", EXAMPLE, "--jobs", 2, "--name", "sim")
    db = Database(f"sqlite:///{tmp_path / 'home' / 'frazil.db'}")
    site = SiteResources(name="site-a", cpu=8, gpu=1, memory=64, disk=100)
    c = claim(db, site, 1, 1.0)[0]
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=2.0, host="node1")
    store_log(db, c.task_id, c.attempt, c.passkey, name="stderr", text=TRACEBACK, now=2.5)
    attempts.fail(db, c.task_id, c.attempt, c.passkey, Failure(TRACEBACK), now=3.0)
    c2 = claim(db, site, 1, 4.0)[0]
    assert c2.task_id == c.task_id
    attempts.start(db, c2.task_id, c2.attempt, c2.passkey, now=5.0, host="node2")
    store_log(db, c2.task_id, c2.attempt, c2.passkey, name="stdout", text="[ok] 42\n", now=6.0)
    done = Finish(
        usage=Usage(cpu_time=1.5, wall_time=2.0, max_memory=0.5),
        stats={"corsika.wall_time": 2.0, "showers": 1000.0},
        files=(
            FileRecord("file:///data/gcd.i3.gz", "input", "permanent", "gcd.i3.gz", 1234,
                       "sha512", "ab" * 64),
            FileRecord("file:///data/out/corsika_0.i3", "output", "permanent", "corsika.i3",
                       99, "sha512", "cd" * 64),
        ),
    )  # fmt: skip
    attempts.finish(db, c2.task_id, c2.attempt, c2.passkey, done, now=7.0)
    other = claim(db, SiteResources(name="site-b", cpu=8, gpu=1, memory=64, disk=100), 1, 8.0)[0]
    attempts.start(db, other.task_id, other.attempt, other.passkey, now=9.0, host="node3")
    db.dispose()
    return frazil, c.task_id


def test_show_task_lists_files_logs_and_a_short_error(tmp_path):
    frazil, task_id = _ran(tmp_path)
    out = frazil("show", "task", task_id).stdout
    assert "gcd.i3.gz" in out and "file:///data/out/corsika_0.i3" in out and "1,234" in out
    assert "sha512:" + "ab" * 64 in out  # whole, in a pipe
    assert f"attempt 1 logs: stderr (frazil logs {task_id} --attempt 1)" in out
    assert "attempt 2 logs: stdout" in out
    assert "attempt 1 error: ValueError: bad seed (+2 lines: --verbose)" in out
    assert "showers=1000" in out and "corsika.wall_time=2 s" in out  # statistics carry units
    full = frazil("show", "task", task_id, "--verbose").stdout
    assert TRACEBACK.strip() in full
    detail = json.loads(frazil("show", "task", task_id, "--json").stdout)
    (first, second) = detail["attempts"]
    assert first["logs"] == ["stderr"] and [f["movement"] for f in second["files"]] == [
        "input",
        "output",
    ]


def test_logs_of_a_task(tmp_path):
    frazil, task_id = _ran(tmp_path)
    assert frazil("logs", task_id).stdout == "[ok] 42\n"  # the last attempt's stdout
    assert frazil("logs", task_id, "--attempt", 1, "--stderr").stdout == TRACEBACK
    result = frazil("logs", task_id, "--attempt", 1, ok=False)
    assert "task 1 attempt 1 has no log 'stdout' (logs: stderr)" in result.stderr
    assert "no logs" in frazil("logs", task_id + 1, ok=False).stderr


def test_status_by_site_and_watch(tmp_path, interruptible):
    frazil, _ = _ran(tmp_path)
    view = json.loads(frazil("status", "sim", "--by-site", "--json").stdout)
    assert view["by_site"] == {"site-a": {"complete": 1}, "site-b": {"processing": 1}}
    assert sum(sum(c.values()) for c in view["by_phase"].values()) == 1  # the one at site-b
    text = frazil("status", "sim", "--by-site").stdout
    assert "site-a" in text and "site-b" in text
    plain = json.loads(frazil("status", "sim", "--json").stdout)
    assert plain["by_site"] == {} and plain["by_phase"] == {}  # only when asked for
    # --watch refreshes until the dataset is complete: here it is not, so stop it
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
    env["FRAZIL_HOME"] = str(tmp_path / "home")
    proc = subprocess.Popen(
        [sys.executable, "-m", "frazil", "status", "sim", "--watch", "--interval", "0.5"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    seen = []  # read until it refreshed twice (each refresh is flushed), then stop it
    assert proc.stdout is not None
    for line in proc.stdout:
        seen.append(line)
        if sum("dataset 1 (sim)" in x for x in seen) == 2:
            break
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and err.splitlines() == ["interrupted"], err
    text = "".join(seen) + out
    assert text.count("every 0.5 s") >= 2 and text.count("dataset 1 (sim)") >= 2
