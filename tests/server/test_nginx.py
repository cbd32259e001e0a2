"""The production front: a real nginx (Debian's package) with deploy/nginx/ before `frazil server`.

nginx runs unprivileged on a free loopback port, with the repository's configuration; only
what must differ on a test machine is replaced (ports, paths, and the timeouts, shortened
from 10 s to 2 s so that the test is quick). Slowloris clients, which send half a request
head or half a body and then nothing, are cut off by nginx within its timeouts while real
clients keep being served, and none of them ever reaches frazil; an over-size body is
refused with 413 in the API's error shape before it is sent.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import resource
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.faults.conftest import free_port

DEPLOY = ROOT / "deploy" / "nginx"
TIMEOUT = 2  # seconds: client_header_timeout and client_body_timeout in this test
SLOW_HEADS = 300
SLOW_BODIES = 100


def _set(text: str, name: str, value: str) -> str:
    """``text`` with the one ``name ...;`` directive set to ``value``."""
    pattern = re.compile(rf"^(\s*){re.escape(name)}\s[^;{{}}\n]*;", re.MULTILINE)
    found = pattern.findall(text)
    assert len(found) == 1, f"deploy/nginx should set {name} once, found {len(found)}"
    return pattern.sub(lambda m: f"{m.group(1)}{name} {value};", text)


def _replace(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"deploy/nginx should hold {old!r} once"
    return text.replace(old, new)


@dataclass
class Nginx:
    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    rlimit: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        found = []
        for proc in Path("/proc").iterdir():
            if proc.name.isdigit():
                with contextlib.suppress(OSError):
                    stat = (proc / "stat").read_text()
                    if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                        found.append(int(proc.name))
        return found


@contextlib.contextmanager
def nginx_before(upstream_port: int) -> Iterator[Nginx]:
    """nginx with deploy/nginx/*.conf, proxying to ``upstream_port``, run as an unprivileged
    user (``nobody`` when we are root); stopped and removed at the end."""
    binary = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if binary is None:
        pytest.skip("no nginx here (Debian: apt-get install nginx; .ci/run installs it)")
    root = Path(tempfile.mkdtemp(prefix="frazil-nginx-"))
    user: dict[str, object] = {}
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        os.chown(root, nobody.pw_uid, nobody.pw_gid)
        user = {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}
    port = free_port()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    main = (DEPLOY / "nginx.conf").read_text()
    wanted = re.search(r"worker_rlimit_nofile\s+(\d+);", main)
    assert wanted is not None, "deploy/nginx/nginx.conf should set worker_rlimit_nofile"
    rlimit = min(int(wanted.group(1)), hard)  # unprivileged, nginx cannot go past the hard limit
    main = re.sub(r"^user .*;\n", "", main, flags=re.MULTILINE)  # only root may switch users
    main = _set(main, "pid", str(root / "nginx.pid"))
    main = _set(main, "error_log", f"{root / 'error.log'} info")
    main = _set(main, "worker_processes", "2")
    main = _set(main, "worker_rlimit_nofile", str(rlimit))
    main = _set(main, "access_log", str(root / "access.log"))
    main = _replace(main, "include /etc/nginx/conf.d/*.conf;", f"include {root / 'frazil.conf'};")
    main = _replace(main, "include /etc/nginx/modules-enabled/*.conf;\n", "")
    temp = "".join(
        f"    {kind}_temp_path {root / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = main.replace("http {\n", "http {\n" + temp, 1)
    site = (DEPLOY / "frazil.conf").read_text()
    site = _set(site, "server", f"127.0.0.1:{upstream_port}")
    site = _set(site, "listen", f"127.0.0.1:{port}")
    site = _set(site, "client_header_timeout", f"{TIMEOUT}s")
    site = _set(site, "client_body_timeout", f"{TIMEOUT}s")
    (root / "nginx.conf").write_text(main)
    (root / "frazil.conf").write_text(site)
    if user:
        for path in root.iterdir():
            os.chown(path, nobody.pw_uid, nobody.pw_gid)
    argv = [binary, "-p", str(root), "-c", str(root / "nginx.conf"), "-e", str(root / "error.log")]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False, **user)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [*argv, "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True, **user,
    )  # fmt: skip
    nginx = Nginx(proc, port, root, rlimit)
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            assert time.monotonic() < deadline, "nginx did not listen in 30 s"
            time.sleep(0.05)
        yield nginx
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


def _slow(port: int, head: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(head)
    return s


def _cut_off(s: socket.socket) -> str:
    """What the server sent before it closed ``s`` (waits for the close)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := s.recv(65536):
            data += chunk
    return data.decode(errors="replace")


def _sockets(pid: int) -> int:
    count = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            count += os.readlink(fd).startswith("socket:")
    return count


def test_nginx_cuts_off_slow_clients_and_keeps_serving(start_server):
    server = start_server()
    with nginx_before(server.port) as nginx:
        # the workers run with the open-file limit of deploy/nginx/nginx.conf
        for worker in nginx.workers():
            limits = Path(f"/proc/{worker}/limits").read_text()
            line = next(x for x in limits.splitlines() if x.startswith("Max open files"))
            assert int(line.split()[3]) == nginx.rlimit, line
        user = {"Authorization": f"Bearer {server.token}"}
        client = httpx.Client(base_url=nginx.url, headers=user, timeout=10)
        assert client.get("/health").json()["status"] == "ok"
        sockets_before = _sockets(server.proc.pid)

        head = b"POST /datasets HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        started = time.monotonic()
        slow = [_slow(nginx.port, head) for _ in range(SLOW_HEADS)]  # never the blank line
        body = head + f"Authorization: Bearer {server.token}\r\n".encode()
        slow += [
            _slow(nginx.port, body + b"Content-Length: 1000\r\n\r\n" + b'{"config": ')
            for _ in range(SLOW_BODIES)
        ]  # and never the rest of the body

        # real clients are served meanwhile, and nothing of the slow ones reaches frazil
        served, worst, most_sockets = 0, 0.0, 0
        while time.monotonic() - started < TIMEOUT + 0.5:
            t = time.monotonic()
            assert client.get("/health").status_code == 200
            r = client.post("/datasets", json={"config": {"tasks": []}})
            assert r.status_code == 422 and "ConfigError" in r.text, r.text
            worst = max(worst, time.monotonic() - t)
            most_sockets = max(most_sockets, _sockets(server.proc.pid))
            served += 1
        assert served >= 5 and worst < 1.0, (served, worst)
        assert most_sockets <= sockets_before + 8, (sockets_before, most_sockets)

        # every slow client was cut off within the timeout (plus a second of slack)
        answers: list[str] = []
        threads = [threading.Thread(target=lambda s=s: answers.append(_cut_off(s))) for s in slow]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=TIMEOUT + 5)
        cut = time.monotonic() - started
        print(
            f"{len(slow)} slow clients cut off after {cut:.1f} s; meanwhile {served} rounds of "
            f"real requests, the slowest {worst * 1000:.0f} ms; frazil's sockets "
            f"{sockets_before} -> at most {most_sockets}"
        )
        assert len(answers) == len(slow), f"{len(slow) - len(answers)} slow clients still held"
        assert cut < TIMEOUT + 3.0, cut
        assert all(a == "" or a.startswith("HTTP/1.1 408") for a in answers), set(answers)
        for s in slow:
            s.close()
        assert client.get("/health").status_code == 200

        # an over-size body: 413 from nginx, before the body is sent
        with socket.create_connection(("127.0.0.1", nginx.port), timeout=10) as s:
            s.sendall(body + f"Content-Length: {17 * 1024 * 1024}\r\n\r\n".encode())
            answer = _cut_off(s)
        assert answer.startswith("HTTP/1.1 413"), answer
        assert '"error": "TooLarge"' in answer and "16777216" in answer
        client.close()
        log = (nginx.root / "error.log").read_text()
        assert "setrlimit" not in log and "worker_connections are not enough" not in log, log
