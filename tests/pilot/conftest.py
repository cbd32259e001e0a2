"""A real HTTP file server on loopback, with scripted failures, for the transfer tests."""

from __future__ import annotations

import contextlib
import shutil
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from frazil.pilot.httptransfer import HttpProtocol
from frazil.pilot.transfer import register_protocol


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: ServerState

    def handle_error(self, request: object, client_address: object) -> None:
        # Clients that time out hang up mid-answer on purpose; that is not worth a traceback.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


@dataclass
class ServerState:
    """What the server has seen, and what it should do wrong."""

    root: Path
    base_url: str = ""
    #: path → status codes to answer with, one per request, before serving normally
    failures: dict[str, list[int]] = field(default_factory=dict)
    #: path → seconds to wait before answering
    delays: dict[str, float] = field(default_factory=dict)
    requests: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    def count(self, method: str, path: str) -> int:
        with self.lock:
            return self.requests.count((method, "/" + path.lstrip("/")))


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _scripted(self) -> bool:
        """Answer with a scripted failure or delay; True if the request was answered."""
        state = self.server.state
        path = self._path()
        with state.lock:
            state.requests.append((self.command, path))
            codes = state.failures.get(path)
            status = codes.pop(0) if codes else None
        time.sleep(state.delays.get(path, 0.0))
        if status is None:
            return False
        self._drain()
        self._answer(status, b"scripted failure")
        return True

    def _drain(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self._scripted():
            return
        target = self.server.state.root / self._path().lstrip("/")
        if not target.is_file():
            self._answer(404, b"not found")
            return
        self._answer(200, target.read_bytes())

    def do_PUT(self) -> None:
        if self._scripted():
            return
        if "chunked" in self.headers.get("Transfer-Encoding", ""):
            self._answer(411, b"length required")  # what many real servers do
            return
        body = self._drain()
        target = self.server.state.root / self._path().lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)
        self._answer(201, b"")


@contextlib.contextmanager
def _serve(root: Path, context: ssl.SSLContext | None = None) -> Iterator[ServerState]:
    root.mkdir()
    server = _Server(("127.0.0.1", 0), _Handler)
    scheme = "http"
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    server.state = ServerState(root=root)
    server.state.base_url = f"{scheme}://127.0.0.1:{server.server_address[1]}"
    # A short poll interval keeps shutdown (and so each test's teardown) quick.
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server.state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[ServerState]:
    """An HTTP server on 127.0.0.1 serving (and accepting PUTs into) ``tmp_path / "served"``."""
    with _serve(tmp_path / "served") as state:
        yield state


@pytest.fixture
def certificate(tmp_path: Path) -> Path:
    """A self-signed certificate for 127.0.0.1 (``cert.pem``, key beside it as ``key.pem``)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
         "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert


@pytest.fixture
def https_server(tmp_path: Path, certificate: Path) -> Iterator[ServerState]:
    """Like ``http_server``, over TLS with ``certificate``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, certificate.with_name("key.pem"))
    with _serve(tmp_path / "served", context) as state:
        yield state


@pytest.fixture
def fast_http() -> Iterator[list[float]]:
    """Register an http handler that records its backoff sleeps instead of sleeping them."""
    sleeps: list[float] = []
    handler = HttpProtocol(retries=3, backoff=0.5, timeout=5.0, sleep=sleeps.append)
    previous = register_protocol("http", handler)
    try:
        yield sleeps
    finally:
        assert previous is not None
        register_protocol("http", previous)
