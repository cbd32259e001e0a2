"""What ``frazil server`` logs, as the real program: each daemon's work once, no line per
request unless ``[server] access_log`` asks for it, and detail with ``-v``."""

from __future__ import annotations

import time

import httpx

from frazil.client import Client
from tests.conftest import EXAMPLE


def _wait_for(server, text: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    while text not in (log := server.log.read_text()):
        assert server.proc.poll() is None, log
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{log}"
        time.sleep(0.1)
    return log


def _work(server) -> None:
    """Jobs for the materializer (a submission makes its first jobs itself: more are
    asked for afterwards), and requests of all kinds."""
    client = Client(server.url, server.token, retry_for=0)
    client.set_jobs(client.submit(EXAMPLE.read_text(), jobs=1), 3)
    for _ in range(3):
        httpx.get(f"{server.url}/health")
        client.datasets()


def test_the_server_logs_its_daemons_work_and_no_request(start_server):
    server = start_server()
    _work(server)
    log = _wait_for(server, "INFO frazil.services.materialize: materialized 2 jobs")
    assert f"INFO frazil.server.main: frazil server on http://127.0.0.1:{server.port} (" in log
    assert "daemons: materializer, watchdog, repair; access log off)" in log
    assert "GET /health" not in log and "GET /datasets" not in log
    assert "HTTP Request" not in log and "DEBUG" not in log
    assert log.count("materialized") == 1


def test_the_access_log_is_a_line_per_request_when_asked_for(start_server):
    server = start_server(access_log=True)
    _work(server)
    log = _wait_for(server, '"GET /datasets HTTP/1.1" 200')
    assert log.count("INFO uvicorn.access: 127.0.0.1:") >= 8  # 2 changes, 3 health, 3 listings
    assert '"GET /health HTTP/1.1" 200' in log and '"POST /datasets HTTP/1.1" 201' in log
    assert "access log on)" in log


def test_verbose_adds_the_daemons_detail_and_still_no_line_per_request(start_server):
    server = start_server("-v")
    _work(server)
    _wait_for(server, "materialized 2 jobs")
    log = _wait_for(server, "DEBUG frazil.server.supervisor: daemon materializer ran in ")
    assert "DEBUG frazil.server.supervisor: daemon watchdog ran in " in log
    assert "GET /health" not in log and "GET /datasets" not in log
    assert "HTTP Request" not in log and "httpcore" not in log
