"""``GET /health`` for load balancers: no token, the database and each daemon, and 503 with
the same body when the database is away or a daemon keeps crashing."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from frazil.client import Client
from frazil.config import ServerSettings
from frazil.server.main import ServerThread
from frazil.server.supervisor import Daemon
from frazil.store import Database
from frazil.wire import PROTOCOL, PROTOCOL_HEADER, Health, decode


def test_health_answers_without_a_token_and_names_the_database_and_the_daemons(live):
    r = httpx.get(f"{live.url}/health")
    assert r.status_code == 200, r.text
    assert r.headers[PROTOCOL_HEADER] == str(PROTOCOL)  # the protocol check let it through
    health = decode(Health, r.json())
    assert (health.status, health.database, health.problems) == ("ok", "reachable", ())
    assert [d.name for d in health.daemons] == ["materializer", "watchdog", "repair"]
    assert {d.state for d in health.daemons} <= {"waiting", "running"}
    # a load balancer may send no headers at all, or an empty body with its length
    r = httpx.get(f"{live.url}/health", headers={"Content-Length": "0"})
    assert r.status_code == 200 and r.json()["status"] == "ok"
    assert Client(live.url, "frz_not-a-token", retry_for=0).health().status == "ok"


def test_whoami_and_the_rest_still_need_a_token(live):
    for path in ("/me", "/datasets", "/metrics"):
        r = httpx.get(f"{live.url}{path}")
        assert (r.status_code, r.json()["error"]) == (401, "AuthError"), path
    r = httpx.post(f"{live.url}/health", json={})  # a body without a token: refused unread
    assert r.status_code == 401
    assert live.client(live.user).whoami().name == "alice"


def _until(url: str, status: int, timeout: float = 60.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while (r := httpx.get(f"{url}/health")).status_code != status:
        assert time.monotonic() < deadline, f"/health still answers {r.status_code}: {r.text}"
        time.sleep(0.05)
    return r


def test_a_daemon_that_keeps_crashing_makes_the_server_unhealthy_until_it_recovers(tmp_path):
    db = Database(f"sqlite:///{tmp_path / 'frazil.db'}")
    db.migrate()
    broken = {"yes": True}

    def flaky(_now: float) -> None:
        if broken["yes"]:
            raise RuntimeError("the disk is full")

    server = ServerThread(db, settings=ServerSettings(notify_after=3))
    server.supervisor.daemons.append(Daemon("flaky", flaky, 0.01))
    server.start()
    try:
        r = _until(server.url, 503)
        health = decode(Health, r.json())
        assert (health.status, health.database) == ("unhealthy", "reachable")
        (flaky_health,) = [d for d in health.daemons if d.name == "flaky"]
        assert flaky_health.state == "failing" and flaky_health.crashes >= 3
        assert flaky_health.error == "RuntimeError: the disk is full"
        (problem,) = health.problems
        assert problem.startswith("daemon flaky crashed ") and problem.endswith(
            " times in a row: RuntimeError: the disk is full"
        )
        # the client hands the unhealthy answer back instead of retrying or raising
        started = time.monotonic()
        assert Client(server.url, "frz_x", retry_for=30).health().status == "unhealthy"
        assert time.monotonic() - started < 10
        broken["yes"] = False
        r = _until(server.url, 200)
        (flaky_health,) = [d for d in decode(Health, r.json()).daemons if d.name == "flaky"]
        assert (flaky_health.state, flaky_health.crashes, flaky_health.error) == ("running", 0, "")
    finally:
        server.stop()
        db.dispose()


def test_an_unreachable_database_makes_the_server_unhealthy(tmp_path: Path):
    where = tmp_path / "frazil.db"
    where.mkdir()  # a directory where the database file should be: it cannot be opened
    db = Database(f"sqlite:///{where}")
    server = ServerThread(db).start()
    try:
        r = httpx.get(f"{server.url}/health")
        assert r.status_code == 503 and r.headers["content-type"] == "application/json"
        health = decode(Health, r.json())
        assert (health.status, health.database) == ("unhealthy", "unreachable")
        assert health.problems[0].startswith("the database is unreachable: ")
        assert "unable to open database file" in health.problems[0]
        assert Client(server.url, "frz_x", retry_for=0).health() == health
    finally:
        server.stop()


def test_a_503_that_is_not_a_health_answer_is_retried_then_raised():
    from frazil.client import ServerError

    calls: list[int] = []

    def proxy(_request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(503, text="Service Unavailable")

    client = Client("http://x.example", "", retry_for=0.5, transport=httpx.MockTransport(proxy))
    try:
        client.health()
    except ServerError as exc:
        assert "HTTP 503" in str(exc)
    else:
        raise AssertionError("a proxy's 503 passed for the server's health")
    assert len(calls) > 1


def test_an_older_servers_health_still_reads():
    def older(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "ok", "version": "0.0.9"})

    client = Client("http://x.example", "", transport=httpx.MockTransport(older))
    assert client.health() == Health("ok", "0.0.9", "reachable", (), ())
