"""``frazil site`` as the real program against a real server on loopback: a token the
server refuses stops it with one line and exit 1, ``--once`` says whether its round failed,
and its log says what happened, once per event."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from frazil.client import Client
from frazil.server.main import ServerThread
from frazil.services.sites import list_sites
from frazil.services.tokens import create_token, list_tokens, revoke_token
from frazil.store import Database
from tests.faults.conftest import free_port, write_toml


@dataclass
class Served:
    db: Database
    url: str
    home: Path

    def token(self, name: str, role: str = "site") -> str:
        return create_token(self.db, name, role, now=time.time())[1]

    def site_config(self, token: str, name: str = "local", url: str = "", **queue: Any) -> Path:
        path = self.home / f"site-{name}.toml"
        write_toml(path, {
            "name": name, "server": url or self.url, "token": token,
            "queue": {"plugin": "local", "max_queued": 2, "claim_batch": 2,
                      "poll_interval": 0.2, "heartbeat": 5.0,
                      "options": {"cpus": 2, "memory": 4.0}, **queue},
            "resources": {"cpu": 1, "memory": 1.0, "disk": 1.0, "time": 1.0},
            "storage": {"scratch": self.home / "scratch"},
        })  # fmt: skip
        return path


@pytest.fixture
def served(tmp_path: Path, sqlite_template: Path) -> Iterator[Served]:
    path = tmp_path / "frazil.db"
    path.write_bytes(sqlite_template.read_bytes())
    db = Database(f"sqlite:///{path}")
    db.migrate()
    server = ServerThread(db, fast_daemons=True)
    server.app.state.frazil.token_ttl = 0.0  # a revoked token stops at its next request
    server.start()
    yield Served(db, server.url, tmp_path)
    server.stop()
    db.dispose()


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAZIL_")}
    return {**env, "FRAZIL_HOME": str(home)}


def site(home: Path, config: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``frazil site --config config [args]`` to its end (a bad token must end it)."""
    argv = [sys.executable, "-m", "frazil", "site", "--config", str(config), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, env=_env(home), timeout=120, check=False
    )


def _error_line(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error ")]
    return line


@pytest.mark.parametrize("args", [(), ("--once",)])
def test_an_invalid_token_stops_the_site_with_one_line(served, args):
    line = _error_line(site(served.home, served.site_config("frz_not-a-token"), *args))
    assert line == (
        f"error site 'local' stops: the server at {served.url} refuses its token (invalid "
        "token); give it a site token for 'local' (frazil token create local --role site)"
    )


def test_another_sites_token_and_a_user_token_stop_it_too(served):
    line = _error_line(site(served.home, served.site_config(served.token("elsewhere"))))
    assert "refuses its token (this needs a site token for 'local'; 'elsewhere' is for " \
        "another site)" in line  # fmt: skip
    line = _error_line(site(served.home, served.site_config(served.token("alice", "user"))))
    assert "refuses its token (this needs a site token; 'alice' is a user token)" in line


def test_a_token_revoked_while_it_runs_stops_the_site(served):
    config = served.site_config(served.token("local"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "frazil", "site", "--config", str(config)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(served.home),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not [s for s in list_sites(served.db) if s.name == "local"]:
            assert proc.poll() is None and time.monotonic() < deadline, "the site never registered"
            time.sleep(0.1)
        (mine,) = [t for t in list_tokens(served.db) if t.name == "local"]
        revoke_token(served.db, mine.id, now=time.time())
        _, err = proc.communicate(timeout=60)  # it ends by itself: no retrying forever
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, err
    (line,) = [x for x in err.splitlines() if x.startswith("error ")]
    assert "refuses its token (token 'local' was revoked)" in line


def test_once_exits_0_after_a_good_round_and_1_after_a_failed_one(served):
    token = served.token("local")
    result = site(served.home, served.site_config(token), "--once")
    assert result.returncode == 0, result.stderr
    away = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    result = site(served.home, served.site_config(token, url=away, poll_interval=0.1), "--once")
    assert result.returncode == 1
    line = next(x for x in result.stderr.splitlines() if x.startswith("error "))
    assert line.startswith(
        f"error site 'local': the round failed: cannot reach the Frazil server at {away}"
    )
    assert "Traceback" not in result.stderr


def _task_config(tmp_path: Path) -> dict[str, Any]:
    script = tmp_path / "hello.py"
    script.write_text("print('hello')\n")
    return {"tasks": [{"name": "hello", "requirements": {"memory": 0.5, "disk": 0.5},
                       "trays": [{"modules": [{"src": str(script)}]}]}]}  # fmt: skip


def _run_until_done(served: Served, *args: str) -> str:
    """Run a site until one submitted task completes, then stop it (SIGTERM): its log."""
    client = Client(served.url, served.token("alice", "user"), retry_for=0)
    dataset = client.submit(_task_config(served.home), jobs=1)
    config = served.site_config(served.token("local"))
    log = served.home / f"site{len(args)}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "frazil", *args, "site", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=_env(served.home),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while client.dataset(dataset).dataset.status != "complete":
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        # a round after the pilot's report sees its batch job end (or, when the pilot is
        # still on its way out, cancels it: its task needs it no longer)
        while not re.search(r"batch job\(s\) ended|cancelled 1", log.read_text()):
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return log.read_text()


def test_the_log_says_each_event_once_and_no_request(served):
    text = _run_until_done(served)
    lines = text.splitlines()
    assert any(line.endswith(f"INFO frazil.site.main: site local registered with {served.url}")
               for line in lines), text  # fmt: skip
    assert any(line.endswith("INFO frazil.site.main: claimed 1, submitted 1; 1 batch job(s) "
                             "queued or running") for line in lines), text  # fmt: skip
    end = re.compile(
        r"INFO frazil\.site\.main: (1 batch job\(s\) ended|cancelled 1 batch job\(s\) whose "
        r"tasks no longer need them); 0 batch job\(s\) queued or running$"
    )
    assert len([line for line in lines if end.search(line)]) == 1, text
    assert lines[-1].endswith("INFO frazil.site.main: site local stopped"), text
    assert len(lines) == 5, text  # how it runs, registered, claimed, ended, stopped
    assert "DEBUG" not in text and "a quiet round" not in text
    assert "HTTP Request" not in text and "httpcore" not in text and "httpx" not in text


def test_verbose_adds_detail_but_no_line_per_request(served):
    text = _run_until_done(served, "-v")
    assert "DEBUG frazil.site.main: a quiet round: " in text
    assert "claimed 1, submitted 1" in text
    assert "HTTP Request" not in text and "httpcore" not in text and "httpx" not in text


def test_a_site_whose_server_is_away_backs_off_saying_why_until_stopped(served):
    away = f"http://127.0.0.1:{free_port()}"
    config = served.site_config(served.token("local"), url=away, poll_interval=0.1)
    log = served.home / "away.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "frazil", "site", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, env=_env(served.home),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "round failed" not in log.read_text():
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    failed = [line for line in log.read_text().splitlines() if "round failed" in line]
    assert failed[0].endswith(
        f"WARNING frazil.site.main: round failed, next try in 0.2 s: cannot reach the Frazil "
        f"server at {away}: [Errno 111] Connection refused"
    ), failed
