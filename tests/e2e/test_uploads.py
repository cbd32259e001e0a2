"""A config that names its module and an input by paths next to it, submitted with the real
``frazil`` program from a second home to a live server, runs at a site whose pilots start in
a directory where those paths do not exist: the server hands them the uploaded files."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from frazil.client import Client
from frazil.config import ServerSettings
from frazil.server.main import ServerThread
from frazil.services.tokens import create_token
from frazil.store import Database
from frazil.store.schema import task_attempt
from tests.cli.conftest import runner
from tests.e2e.conftest import World

MODULE = """\
import sys
from pathlib import Path

words = Path("words.txt").read_text().split()
Path("out.txt").write_text(f"{sys.argv[1]} {len(words)}\\n")
"""

CONFIG = """\
description: uploaded module and input
tasks:
  - name: count
    requirements: {memory: 1.0, time: 0.5}
    data:
      - {remote: inputs/words.txt, movement: input}
      - {remote: '$system(storage)/out.txt', local: out.txt, movement: output}
    trays:
      - modules:
          - name: count
            src: mymodule.py
            args: [counted]
"""


@pytest.fixture
def world(tmp_path: Path, sqlite_template: Path) -> Iterator[World]:
    path = tmp_path / "frazil.db"
    shutil.copy(sqlite_template, path)
    db = Database(f"sqlite:///{path}")
    now = time.time()
    _, user = create_token(db, "tester", "user", now=now)
    _, site_token = create_token(db, "local", "site", now=now)
    settings = ServerSettings(blob_dir=tmp_path / "server" / "blobs")
    server = ServerThread(db, settings=settings, fast_daemons=True).start()
    w = World(db, server, Client(server.url, user, retry_for=5), site_token, tmp_path)
    yield w
    if w._stop is not None:
        w.stop_site(cancel=True)
    server.stop()
    db.dispose()


def test_a_submitted_module_and_input_run_at_a_site(world: World, tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "inputs").mkdir(parents=True)
    (project / "mymodule.py").write_text(MODULE)
    (project / "inputs" / "words.txt").write_text("one two three four\n")
    (project / "sim.yaml").write_text(CONFIG)
    laptop = runner(tmp_path / "laptop")
    laptop("login", world.server.url, "--token", world.client._http.headers["authorization"][7:])

    said = laptop("submit", project / "sim.yaml").stdout
    size = len(MODULE) + len("one two three four\n")
    assert f"uploaded 2 files ({size} bytes)" in said, said
    again = laptop("submit", project / "sim.yaml", "--json").stdout  # nothing sent again
    pinned = json.loads(again)["uploads"]
    assert sorted(pinned) == ["inputs/words.txt", "mymodule.py"]
    kept = sorted(p.name for p in (tmp_path / "server" / "blobs").iterdir())
    assert kept == sorted(pinned.values())

    world.start_site()
    for dataset in (1, 2):
        assert world.wait_done(dataset) == "complete", world.explain(dataset)
    assert (world.home / "storage" / "out.txt").read_text() == "counted 4\n"
    with world.db.read() as conn:
        (spec,) = conn.execute(select(task_attempt.c.spec).limit(1)).scalars()
    ran = json.loads(spec)
    module = ran["trays"][0]["modules"][0]
    assert module["src"] == f"frazil-blob:{pinned['mymodule.py']}/mymodule.py"
    assert ran["data"][0]["checksum"] == f"sha256:{pinned['inputs/words.txt']}"


def test_a_missing_file_is_refused_with_its_line(world: World, tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "sim.yaml").write_text(CONFIG)
    laptop = runner(tmp_path / "laptop")
    laptop("login", world.server.url, "--token", world.client._http.headers["authorization"][7:])
    said = laptop("submit", project / "sim.yaml", ok=False).stderr
    assert "sim.yaml:11: " in said, said  # the line of src
    assert "tasks[0].trays[0].modules[0].src: 'mymodule.py' does not exist" in said
    assert world.client.datasets() == []
