"""``frazil logs --follow`` against a running task: a real server, site, pilot and program."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from frazil.services.tokens import create_token
from tests.e2e.conftest import ROOT, World, config

CHATTY = Path(__file__).parent / "modules" / "chatty.py"


def test_follow_prints_what_a_running_task_writes_and_ends_with_it(sqlite_world: World):
    world = sqlite_world
    go = world.home / "go"
    world.start_site()
    cfg = config({
        "name": "chatty", "requirements": {"memory": 1.0, "time": 0.5},
        "trays": [{"modules": [{"name": "chatty", "src": str(CHATTY), "args": str(go)}]}],
    })  # fmt: skip
    d = world.client.submit(cfg, jobs=1)
    (t,) = world.client.tasks(d)
    world.wait(lambda: world.client.task(t.id).task.status == "processing", what="processing")
    _, token = create_token(world.db, "reader", "user", now=time.time())
    env = {**os.environ, "FRAZIL_HOME": str(world.home / "cli"), "FRAZIL_URL": world.server.url,
           "FRAZIL_TOKEN": token, "PYTHONPATH": str(ROOT)}  # fmt: skip
    follow = subprocess.Popen(
        [sys.executable, "-m", "frazil", "logs", str(t.id), "--follow"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(follow.stdout.readline, "")))
    reader.start()
    try:
        world.wait(lambda: "first line\n" in lines, what="the first line through --follow")
        assert "second line\n" not in lines  # not written yet: the task waits for "go"
        go.write_text("")  # the task writes its second line only now
        assert follow.wait(timeout=120) == 0, follow.stderr.read()
    finally:
        if follow.poll() is None:
            follow.kill()
        reader.join(timeout=10)
    assert lines == ["first line\n", "second line\n"]
    assert world.client.task(t.id).task.status == "complete"
