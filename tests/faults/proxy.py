"""A loopback HTTP/1.1 proxy that loses chosen answers: the fault tests' cut connection.

Clients (a site, its pilots) talk to the server through it. Each request goes through to the
server whole, and the server's whole answer comes back to the proxy; for a request that a
rule picks, the proxy then runs the rule's action (kill the server, kill the site) and
closes the client's connection without a word, so that the client sees the connection cut
after the server did the work and committed it. Everything else is passed on unchanged.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Rule:
    """Lose the answer to the next ``times`` requests whose request line matches ``pattern``
    (and whose answer ``when`` accepts), running ``action`` first."""

    pattern: re.Pattern[str]
    times: int = 1
    when: Callable[[Any], bool] = lambda _answer: True
    action: Callable[[], None] | None = None
    lost: list[Any] = field(default_factory=list)  # the answers that were lost (JSON)
    passed: list[Any] = field(default_factory=list)  # later answers to matching requests


def _read_message(sock: socket.socket, buffer: bytearray) -> bytes | None:
    """One HTTP message (head and a Content-Length body) from ``sock``; None at the end."""
    while b"\r\n\r\n" not in buffer:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end]).decode("latin-1")
    match = re.search(r"(?im)^content-length:\s*(\d+)\s*$", head)
    if re.search(r"(?im)^transfer-encoding:\s*chunked", head):
        raise ValueError("the proxy does not pass chunked bodies")
    size = int(match.group(1)) if match else 0
    while len(buffer) < end + size:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        buffer += chunk
    message = bytes(buffer[: end + size])
    del buffer[: end + size]
    return message


def _body(message: bytes) -> Any:
    text = message.split(b"\r\n\r\n", 1)[1]
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text.decode(errors="replace")


class Proxy:
    """Listens on a free loopback port and passes each connection on to ``upstream``."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def lose(self, pattern: str, **options: Any) -> Rule:
        """Lose answers to requests whose line (``POST /sites/x/claim HTTP/1.1``) matches."""
        rule = Rule(re.compile(pattern), **options)
        with self._lock:
            self.rules.append(rule)
        return rule

    def close(self) -> None:
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            from_client, from_upstream = bytearray(), bytearray()
            while True:
                request = _read_message(client, from_client)
                if request is None:
                    return
                upstream.sendall(request)
                answer = _read_message(upstream, from_upstream)
                if answer is None:
                    return  # the server went away: so does the client's connection
                line = request.split(b"\r\n", 1)[0].decode("latin-1")
                if self._lost(line, _body(answer)):
                    return
                client.sendall(answer)
        except (OSError, ValueError):
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.close()

    def _lost(self, line: str, answer: Any) -> bool:
        with self._lock:
            rule = next((r for r in self.rules if r.pattern.search(line)), None)
            if rule is None:
                return False
            if rule.times <= 0 or not rule.when(answer):
                rule.passed.append(answer)
                return False
            rule.times -= 1
        if rule.action is not None:
            rule.action()
        with self._lock:
            rule.lost.append(answer)  # once the action is done
        return True
