"""The local runner's record helpers and its own failure path."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from frazil.batch import local_runner
from frazil.batch.local_runner import pid_alive, proc_start_ticks, read_json, write_json
from frazil.batch.run import run_command
from tests.batch.conftest import wait_until


def test_write_json_replaces_atomically_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    assert write_json(path, {"n": 1})
    assert write_json(path, {"n": 2})
    assert read_json(path) == {"n": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_write_json_once_keeps_the_first_record(tmp_path: Path) -> None:
    path = tmp_path / "end.json"
    assert write_json(path, {"state": "completed"}, once=True)
    assert not write_json(path, {"state": "cancelled"}, once=True)
    assert read_json(path) == {"state": "completed"}
    assert [p.name for p in tmp_path.iterdir()] == ["end.json"]


def test_read_json_tolerates_missing_and_broken_files(tmp_path: Path) -> None:
    assert read_json(tmp_path / "missing.json") is None
    (tmp_path / "broken.json").write_text('{"state": ')
    assert read_json(tmp_path / "broken.json") is None
    (tmp_path / "list.json").write_text("[1]")
    assert read_json(tmp_path / "list.json") is None


def test_pid_alive_checks_identity_and_treats_zombies_as_dead() -> None:
    me = os.getpid()
    start = proc_start_ticks(me)
    assert start is not None
    assert pid_alive(me) and pid_alive(me, start)
    assert not pid_alive(me, start + 1)  # a reused pid is another process
    child = subprocess.Popen(["/bin/true"])
    try:
        stat = Path(f"/proc/{child.pid}/stat")
        wait_until(lambda: ") Z" in stat.read_text())  # exited, not reaped: a zombie
        os.kill(child.pid, 0)  # which signal 0 still reports as a process
        assert not pid_alive(child.pid)
    finally:
        child.wait()
    assert not pid_alive(child.pid)


def test_runner_records_a_command_that_cannot_start(tmp_path: Path) -> None:
    end, run = tmp_path / "end.json", tmp_path / "run.json"
    argv = [sys.executable, "-I", local_runner.__file__, "--end", str(end), "--run", str(run)]
    argv += ["--walltime", "60", "--", str(tmp_path / "no-such-command")]
    run_command(argv, timeout=30)
    record = json.loads(end.read_text())
    assert (record["state"], record["exit_code"]) == ("failed", 127)
    assert "no-such-command" in record["reason"]
    assert not run.exists()
