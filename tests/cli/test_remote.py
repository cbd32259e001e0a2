"""The command line from a second machine: a home holding only ``frazil login``'s file,
a real server on loopback (on PostgreSQL where the test server is configured), and the real
``frazil`` program; and what it prints into a pipe."""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

from frazil.client import Client, PilotClient
from frazil.services import queries
from frazil.wire import Finish, SiteInfo, Slot, slot_fields
from tests.cli.conftest import runner
from tests.conftest import EXAMPLE

SLOT = Slot(cpu=4, gpu=1, memory=16.0, disk=50.0, time=24.0)


def test_a_second_machine_submits_watches_and_controls(server, tmp_path):
    url, tokens, db = server
    laptop = tmp_path / "laptop"
    frazil = runner(laptop)
    said = frazil("login", url, "--token", tokens["alice"], "--name", "prod").stdout
    assert "as alice (user)" in said and "'prod' (the default)" in said
    creds = laptop / "credentials.toml"
    assert stat.S_IMODE(creds.stat().st_mode) == 0o600
    assert sorted(p.name for p in laptop.iterdir()) == ["credentials.toml"]

    done = json.loads(frazil("submit", EXAMPLE, "--jobs", 3, "--name", "sim", "--json").stdout)
    d = done["dataset"]
    assert done["checked"]["summary"] == "checked every job (3)"
    (listed,) = json.loads(frazil("datasets", "--json").stdout)
    assert (listed["id"], listed["owner"]) == (d, "alice")  # the token's name, not the Unix user
    status = json.loads(frazil("status", "sim", "--json").stdout)
    assert status["counts"]["corsika"] == {"waiting": 3}
    assert "suspend: 6 task(s) in dataset sim job 1" in frazil("suspend", "sim", "-j", 1).stdout
    jobs = json.loads(frazil("jobs", "sim", "--json").stdout)
    assert [j["status"] for j in jobs] == ["processing", "suspended", "processing"]
    assert "resume: 6 task(s)" in frazil("resume", "sim", "--job", 1).stdout
    frazil("set-priority", "sim", 2.5)
    assert "dataset sim: 5 jobs; checked every job (2)" in frazil("set-jobs", "sim", 5).stdout
    actors = {e.actor for e in queries.events(db, d, limit=100)}
    assert actors == {"user:alice"}
    # a site runs a task, whose pilot leaves a log: the laptop reads it and the audit trail
    site = Client(url, tokens["site-a"], retry_for=0)
    site.register_site("site-a", SiteInfo(**slot_fields(SLOT)))
    c = site.claim("site-a", SLOT, 1)[0]
    pilot = PilotClient(url, c.task_id, c.attempt, c.passkey, retry_for=0)
    pilot.start("node1")
    pilot.log("stdout", "[corsika] 1000 showers\n")
    pilot.finish(Finish())
    assert frazil("logs", c.task_id).stdout == "[corsika] 1000 showers\n"
    shown = frazil("show", "task", c.task_id).stdout
    assert "node1" in shown and f"frazil logs {c.task_id} --attempt 1" in shown
    events = json.loads(frazil("events", "sim", "--json").stdout)
    assert {"submit", "suspend", "resume"} <= {e["action"] for e in events}
    assert "suspend" in frazil("events", "sim", "--kind", "suspend").stdout
    assert sorted(p.name for p in laptop.iterdir()) == ["credentials.toml"]  # no database

    result = frazil("quota", "show", ok=False)  # alice is no administrator
    assert result.stderr.count("\n") == 1 and "admin" in result.stderr


def test_where_commands_go(server, tmp_path):
    url, tokens, _ = server
    frazil = runner(tmp_path / "home")
    # scripts: the environment alone
    env = {"FRAZIL_URL": url, "FRAZIL_TOKEN": tokens["alice"]}
    assert json.loads(frazil("datasets", "--json", env_=env).stdout) == []
    result = frazil("datasets", ok=False, env_={"FRAZIL_URL": url})
    assert "FRAZIL_TOKEN is not set" in result.stderr
    # a wrong token is refused at login, and nothing is kept
    result = frazil("login", url, "--token", "frz_wrong", ok=False)
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert not (tmp_path / "home" / "credentials.toml").exists()
    # named servers, the default, logout
    frazil("login", url, "--token", tokens["alice"], "--name", "mine")
    frazil("login", url, "--token", tokens["root"], "--name", "admin", "--no-default")
    servers = json.loads(frazil("servers", "--json").stdout)
    assert [(s["name"], s["default"]) for s in servers] == [("mine", True), ("admin", False)]
    assert tokens["root"] not in frazil("servers").stdout
    assert "admin" in frazil("quota", "show", ok=False).stderr  # the default: alice
    assert json.loads(frazil("--server", "admin", "quota", "show", "--json").stdout) == []
    result = frazil("--server", "nope", "datasets", ok=False)
    assert "no server 'nope'" in result.stderr and "mine" in result.stderr
    frazil("logout")
    result = frazil("datasets", ok=False)  # no default left, no database here
    assert "frazil login URL" in result.stderr and "frazil init" in result.stderr


def test_an_unreachable_server_is_one_line(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    frazil = runner(tmp_path / "home", FRAZIL_URL=f"http://127.0.0.1:{port}", FRAZIL_TOKEN="x")
    started = time.monotonic()
    result = frazil("datasets", ok=False)
    assert "cannot reach the Frazil server at" in result.stderr
    assert time.monotonic() - started < 60  # the command line rides out restarts, briefly


def _local_dataset(tmp_path: Path):
    """A SQLite database with one dataset whose names tell rows apart only at their ends."""
    frazil = runner(tmp_path / "home")
    frazil("init")
    config = tmp_path / "long.yaml"
    text = EXAMPLE.read_text().replace("detector_2016", "detector_response_IC86_2016")
    config.write_text(text.replace("detector_2020", "detector_response_IC86_2020"))
    frazil("submit", config, "--jobs", 3, "--name", ALIAS, "--description", DESCRIPTION)
    return frazil


ALIAS = "simulation_of_the_2016_and_2020_detector_configurations_" + "x" * 30
DESCRIPTION = "[debug] CORSIKA and NuGen through both detectors, " + "y" * 80 + " the end."


def test_piped_output_cuts_nothing(tmp_path):
    frazil = _local_dataset(tmp_path)
    listed = frazil("datasets").stdout  # stdout is a pipe here: plain text
    assert "│" not in listed and "…" not in listed
    (row,) = listed.splitlines()[1:]
    assert ALIAS in row and row.endswith(DESCRIPTION)
    rows = frazil("status", "1").stdout
    assert "detector_response_IC86_2016" in rows and "detector_response_IC86_2020" in rows
    tsv = list(csv.reader(io.StringIO(frazil("tasks", "1", "-o", "tsv").stdout), delimiter="\t"))
    assert tsv[0][:4] == ["id", "job", "task", "status"] and len(tsv) == 19
    assert {r[2] for r in tsv[1:]} >= {"detector_response_IC86_2016", "detector_response_IC86_2020"}
    picked = frazil("tasks", "1", "--columns", "task,id", "--limit", 2).stdout.splitlines()
    assert picked[0].split() == ["task", "id"] and picked[1].split() == ["corsika", "1"]
    result = frazil("tasks", "1", "--columns", "nope", ok=False)
    assert "no column 'nope'" in result.stderr and "id,job,task" in result.stderr


def test_a_narrow_terminal_keeps_names_whole(tmp_path):
    frazil = _local_dataset(tmp_path)
    for width, fits in (("120", True), ("60", False)):
        result = frazil("status", "1", "-o", "table", env_={"COLUMNS": width})
        table = result.stdout
        assert "detector_response_IC86_2016" in table and "detector_response_IC86_2020" in table
        drawn = [line for line in table.splitlines() if line[:1] in "┏┃┡│└"]
        assert (bool(drawn) is fits and "--columns picks columns" in result.stderr) or fits
        assert not drawn or max(len(line) for line in drawn) <= int(width)
    listed = frazil("datasets", "-o", "table", env_={"COLUMNS": "100"}).stdout
    assert "[debug]" in listed and "…" not in listed  # brackets are text, and nothing is cut
    assert "".join(listed.split()).count(ALIAS) == 1  # wrapped, whole
    assert "y" * 80 in "".join(listed.replace("│", " ").split())


def test_listings_say_when_they_stop_short_and_refuse_bad_filters(tmp_path):
    frazil = _local_dataset(tmp_path)
    result = frazil("tasks", "1", "--limit", 5)
    assert len(result.stdout.splitlines()) == 6
    assert "5 of 18: use --limit, --offset or --all" in result.stderr
    result = frazil("tasks", "1", "--limit", 5, "--all")
    assert len(result.stdout.splitlines()) == 19 and result.stderr == ""
    assert frazil("jobs", "1", "--offset", 1, "--limit", 1).stderr.strip().startswith("1 of 3 from")
    for args, words in (
        (["tasks", "1", "--status", "bogus"], "no task state 'bogus'; task states: idle"),
        (["jobs", "1", "--status", "bogus"], "no job state 'bogus'; job states: processing"),
        (["datasets", "--status", "bogus"], "no dataset state 'bogus'"),
        (["tasks", "1", "--job", 99], "dataset 1 has no job 99 (jobs 0 to 2)"),
        (["tasks", "1", "--task", "nope"], "dataset 1 has no task 'nope' (tasks: corsika"),
        (["status", "2"], "no dataset '2'"),
    ):
        result = frazil(*args, ok=False)
        assert result.returncode == 1 and words in result.stderr, (args, result.stderr)
        assert result.stderr.count("\n") == 1, result.stderr


def test_ctrl_c_exits_130_with_one_line(tmp_path, interruptible):
    """At any moment: while Python imports, while a request waits for its answer."""
    with socket.socket() as silent:  # accepts connections (the backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        port = silent.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
        env.update(FRAZIL_HOME=str(tmp_path), FRAZIL_URL=f"http://127.0.0.1:{port}",
                   FRAZIL_TOKEN="x")  # fmt: skip
        for delay in (0.1, 0.2, 0.4, 0.8, 1.5):
            proc = subprocess.Popen(
                [sys.executable, "-m", "frazil", "status", "sim"], env=env, text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            time.sleep(delay)
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=30)
            assert proc.returncode == 130, (delay, proc.returncode, err)
            assert err.splitlines() == ["interrupted"], (delay, err)
