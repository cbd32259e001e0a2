"""No config can stall the server: a real ``frazil server`` process, over loopback HTTP.

While a config that would freeze the server (an expression of n³ comparisons), one that would
take hours to check (a huge document) and a config edit that takes seconds to check are
sent, the server keeps answering other requests at once, writes included; configs over budget
are rejected within it, with a located error that names it. The server's ``[validation]``
budget is 5 s of CPU time here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from frazil.services.tokens import create_token
from frazil.store import Database
from tests.conftest import ROOT
from tests.faults.conftest import FRAZIL, free_port, write_toml

pytestmark = pytest.mark.slow

#: The budget of the server under test ([validation] in its frazil.toml).
CPU_SECONDS = 5
#: How long any other request may take while a config is being checked (a loaded 2-core
#: machine answers in milliseconds; a frozen server or a held write lock, the whole check).
PROMPT = 1.5
#: The wall-clock limit of a check: far above the CPU budget, for a machine busy with others.
WALL = 60


@dataclass
class Server:
    url: str
    token: str
    log: Path

    def call(self, method: str, path: str, timeout: float = 120.0, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("budget") / "home"
    home.mkdir()
    write_toml(
        home / "frazil.toml",
        {"validation": {"cpu_seconds": CPU_SECONDS, "wall_seconds": WALL, "jobs_seconds": 0.5}},
    )
    env = {**os.environ, "FRAZIL_HOME": str(home)}
    env.pop("FRAZIL_DB_URL", None)
    subprocess.run([str(FRAZIL), "init"], env=env, check=True, capture_output=True)
    db = Database(f"sqlite:///{home / 'frazil.db'}")
    _, token = create_token(db, "alice", "user", now=time.time())
    db.dispose()
    port = free_port()
    log = home / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(FRAZIL), "server", "--port", str(port)], cwd=ROOT, env=env, stdout=out,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    live = Server(f"http://127.0.0.1:{port}", token, log)
    deadline = time.monotonic() + 60
    while True:
        assert proc.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            if live.call("GET", "/health", timeout=1.0).status_code == 200:
                break
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    yield live
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def while_running(
    work: Callable[[], httpx.Response], probe: Callable[[], httpx.Response]
) -> tuple[httpx.Response, float, list[float]]:
    """Run ``work`` in a thread and ``probe`` over and over until it ends: the answer to the
    work, how long it took, and how long each probe took (each must answer 2xx)."""
    answer: list[httpx.Response | BaseException] = []

    def run() -> None:
        try:
            answer.append(work())
        except BaseException as exc:
            answer.append(exc)

    started = time.monotonic()
    thread = threading.Thread(target=run)
    thread.start()
    times = []
    while thread.is_alive():
        t = time.monotonic()
        response = probe()
        times.append(time.monotonic() - t)
        assert response.is_success, response.text
        time.sleep(0.05)
    thread.join()
    elapsed = time.monotonic() - started
    (result,) = answer
    if isinstance(result, BaseException):
        raise result
    return result, elapsed, times


def one_module(args: str, jobs: int = 1) -> dict[str, Any]:
    module = {"src": "run.sh", "args": args}
    return {"config": {"tasks": [{"name": "t", "trays": [{"modules": [module]}]}]}, "jobs": jobs}


def test_the_cubic_expression_is_refused_at_once_and_the_server_keeps_answering(server):
    cube = "[[[1] * 2500] * 2500] * 2500"  # 1.6e10 comparisons: minutes inside one operation
    body = one_module(f"$eval({cube} == {cube})")

    answer, took, probes = while_running(
        lambda: server.call("POST", "/datasets", json=body),
        lambda: server.call("GET", "/health", timeout=30),
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["path"] == "tasks[0].trays[0].modules[0].args"
    assert "nested items counted" in problem["message"]
    assert took < 10
    assert max(probes) < PROMPT, probes


def test_a_huge_config_is_refused_within_its_budget_and_the_server_keeps_answering(server):
    # 2.7 MB of YAML, 800,000 values: reading it alone takes tens of seconds of CPU
    rows = "\n".join(f"    - [{i}, {i}, {i}, {i}, {i}, {i}, {i}]" for i in range(100_000))
    text = (
        f"steering:\n  parameters:\n    table:\n{rows}\n"
        "tasks:\n  - name: t\n    trays: [{modules: [{src: run.sh, args: '$args(job)'}]}]\n"
    )
    answer, took, probes = while_running(
        lambda: server.call("POST", "/datasets", json={"config": text, "jobs": 10}),
        lambda: server.call("GET", "/datasets", timeout=30),
    )
    assert answer.status_code == 422, answer.text
    (problem,) = answer.json()["problems"]
    assert problem["message"] == (
        f"the check of this config used up its budget of {CPU_SECONDS} s of CPU time "
        "([validation] cpu_seconds) while reading the config"
    )
    assert took < WALL
    assert max(probes) < PROMPT, probes


def test_a_config_edit_is_checked_outside_the_write_transaction(server):
    small = one_module("$args(job)", jobs=3)
    edited = server.call("POST", "/datasets", json=small).json()["id"]
    other = server.call("POST", "/datasets", json=small).json()["id"]
    # each module renders 22,500 items: about a second of checking per job
    module = {"src": "run.sh", "args": "$eval(len(str([[1] * 150] * 150)))"}
    heavy = {"tasks": [{"name": "t", "trays": [{"modules": [module] * 700}]}]}
    priority = iter(range(1, 10**6))

    answer, _, probes = while_running(
        lambda: server.call("PUT", f"/datasets/{edited}/config", json={"config": heavy}),
        lambda: server.call(
            "PUT", f"/datasets/{other}/priority", json={"priority": next(priority)}
        ),
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["version"] == 2
    assert answer.json()["checked"]["of"] == 3
    assert len(probes) >= 10 and max(probes) < PROMPT, probes
