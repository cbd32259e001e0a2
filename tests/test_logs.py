"""Log lines: nothing a user or pilot sends can forge one, in the real server's log too."""

import io
import logging
import os
import socket
import subprocess
import sys
import time

from frazil import logs
from frazil.model.records import FileRecord, SiteResources
from frazil.services import attempts
from frazil.services.claim import claim
from frazil.services.submit import submit
from frazil.store import Database
from frazil.wire import Finish
from tests.conftest import ROOT
from tests.services.conftest import make_config

FORGED = "2030-01-01 00:00:00,000 CRITICAL frazil: forged"


def test_a_message_is_one_line_and_a_traceback_is_indented_under_it():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.LogFormatter(logs.FORMAT))
    log = logging.Logger("frazil.test")
    log.addHandler(handler)
    log.warning("cannot delete %s", f"/data/x\n{FORGED}\x1b[2J\r")
    try:
        raise ValueError(f"bad\n{FORGED}")
    except ValueError:
        log.exception("crashed")
    lines = stream.getvalue().splitlines()
    assert lines[0].endswith(
        f"WARNING frazil.test: cannot delete /data/x\\x0a{FORGED}\\x1b[2J\\x0d"
    )
    assert lines[1].endswith("ERROR frazil.test: crashed")
    assert lines[2:] == ["  | Traceback (most recent call last):", *lines[3:-2],
                         "  | ValueError: bad", f"  | {FORGED}"]  # fmt: skip
    assert all(line.startswith("  | ") for line in lines[2:])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_path_with_a_newline_cannot_forge_a_line_of_the_server_log(tmp_path):
    home = tmp_path / "home"
    env = {**os.environ, "FRAZIL_HOME": str(home)}
    env.pop("FRAZIL_DB_URL", None)
    subprocess.run([sys.executable, "-m", "frazil", "init"], env=env, check=True,
                   capture_output=True)  # fmt: skip
    # a pilot reports a temporary output, under the collector's storage root, whose path
    # holds a newline (undeclared by the task's spec, so the collector refuses it and says so)
    data = tmp_path / "data"
    (home / "frazil.toml").write_text(f'[server]\nstorage_roots = ["{data}"]\n')
    evil = data / f"out\n{FORGED}"
    evil.mkdir(parents=True)
    db = Database(f"sqlite:///{home / 'frazil.db'}")
    submit(db, make_config("flat", 1), jobs=1, now=1.0)
    (c,) = claim(db, SiteResources(name="site-a"), 1, 2.0)
    attempts.start(db, c.task_id, c.attempt, c.passkey, now=3.0)
    done = Finish(files=(FileRecord(str(evil), "output", "job_temp"),))
    attempts.finish(db, c.task_id, c.attempt, c.passkey, done, now=4.0)
    db.dispose()
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "frazil", "server", "--port", str(_free_port())],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "forged" not in log.read_text() and time.monotonic() < deadline:
            assert server.poll() is None, log.read_text()
            time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(timeout=30)
    text = log.read_text()
    assert "forged" in text, text  # the collector's daemon logged the path
    assert not any(line.startswith(FORGED[:10]) for line in text.splitlines()), text


def test_detail_is_frazils_own_and_no_library_logs_each_http_request():
    probe = (
        "import logging, sys\n"
        "from frazil import logs\n"
        "logs.configure(logging.DEBUG, sys.stdout)\n"
        "for name in ('frazil.site.main', 'httpx', 'httpcore.http11', 'asyncio'):\n"
        "    log = logging.getLogger(name)\n"
        "    log.debug('debug of %s', name)\n"
        "    log.info('info of %s', name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    said = [line.split(" ", 2)[2] for line in out.splitlines()]
    assert said == [
        "DEBUG frazil.site.main: debug of frazil.site.main",
        "INFO frazil.site.main: info of frazil.site.main",
        "INFO asyncio: info of asyncio",
    ]
