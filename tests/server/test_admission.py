"""What a `frazil server` process admits, over real sockets on loopback.

Anonymous bodies are refused before they are read (the server's peak RSS, VmHWM, stays flat
while six 15 MB bodies arrive), bodies with a pilot's key have their own smaller limit, and
past ``max_concurrency`` open connections the server answers 503 at once instead of holding
everyone (and answers again when they go).
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

BIG = 15_000_000


def _head(path: str, length: int | None, auth: str | None) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", "Content-Type: application/json"]
    lines.append(
        f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    )
    if auth is not None:
        lines.append(f"Authorization: {auth}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer_before_the_body(port: int, path: str, length: int | None, auth: str | None) -> str:
    """Send only a request's head and return the status line and body the server answers."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(_head(path, length, auth))
        data = b""
        try:
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except TimeoutError:
            pytest.fail(f"no answer in 10 s to {path} with {auth!r} before its body: {data!r}")
    return data.decode(errors="replace")


def _send_whole(port: int, path: str, body: bytes, auth: str | None) -> None:
    """Send a request with its whole body (the server may hang up early)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        try:
            s.sendall(_head(path, len(body), auth) + body)
            s.recv(65536)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass


ANONYMOUS = [None, "Bearer frz_not-a-token", "Basic YTpi", "Bearer "]


def test_anonymous_bodies_are_refused_before_they_are_read(start_server):
    server = start_server()
    user = {"Authorization": f"Bearer {server.token}"}
    for _ in range(3):  # warm up: imports, the token cache, the database
        assert httpx.get(f"{server.url}/datasets", headers=user).status_code == 200
        r = httpx.post(f"{server.url}/datasets", json={"config": {}}, headers={})
        assert r.status_code == 401

    # the answer comes while the body is still unsent: nothing of it was waited for
    for auth in ANONYMOUS:
        answer = _answer_before_the_body(server.port, "/datasets", BIG, auth)
        assert answer.startswith("HTTP/1.1 401"), (auth, answer)
        assert '"error":"AuthError"' in answer.replace(" ", "")
    chunked = _answer_before_the_body(server.port, "/datasets", None, None)
    assert chunked.startswith("HTTP/1.1 401"), chunked
    # a pilot's key is checked by its route, after reading: its bodies have their own limit
    finish = "/pilot/tasks/1/attempts/1/finish"
    answer = _answer_before_the_body(server.port, finish, BIG, "Passkey not-a-passkey")
    assert answer.startswith("HTTP/1.1 413"), answer
    assert f"limit of {4 * 1024 * 1024} bytes for a request with a pilot's key" in answer

    before_rss, before_peak = server.status("VmRSS"), server.status("VmHWM")
    config = json.dumps({"config": {"tasks": [1] * (BIG // 3)}}).encode()
    stats = json.dumps({"stats": {f"s{i}": i for i in range(BIG // 20)}}).encode()
    assert len(config) > BIG - 100 and len(stats) > BIG // 2
    sends = [("/datasets", config, auth) for auth in ANONYMOUS]
    sends += [("/datasets", config, None)] * 2 + [(finish, stats, "Passkey nope")] * 2
    threads = [threading.Thread(target=_send_whole, args=(server.port, *s)) for s in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert httpx.get(f"{server.url}/datasets", headers=user).status_code == 200
    grew = server.status("VmHWM") - before_peak
    rss = server.status("VmRSS") - before_rss
    print(f"8 anonymous bodies of 15 MB: peak RSS +{grew} kB, RSS +{rss} kB")
    assert grew < 20_000, f"the server's peak RSS grew by {grew} kB"
    # with the default max_concurrency, it raised its open-file limit for 4096 connections
    assert server.open_files_limit() >= 4096 + 256


def _half_sent(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
    return s


def test_past_max_concurrency_the_server_answers_503_at_once(start_server):
    server = start_server(max_concurrency=8)
    user = {"Authorization": f"Bearer {server.token}"}
    held = [_half_sent(server.port) for _ in range(12)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        r = httpx.get(f"{server.url}/health", headers=user, timeout=10)
        assert r.status_code == 503, r.text
        assert time.monotonic() - started < 2.0
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while (r := httpx.get(f"{server.url}/health", headers=user)).status_code == 503:
        assert time.monotonic() < deadline, "still 503 after the held connections closed"
        time.sleep(0.1)
    assert r.status_code == 200
    assert "Exceeded concurrency limit" in server.log.read_text()
