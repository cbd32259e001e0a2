"""A loopback TCP proxy that a test can partition: the database stops answering, not refusing.

While ``partitioned``, the proxy forwards nothing in either direction and reads nothing, but
keeps every connection open and accepts new ones: to its clients the database is silent, as
behind a network that drops every packet or a server that was stopped (their kernels still
acknowledge what is sent). When the partition ends, the connections that lived through it
are cut (a long partition kills TCP connections) and new ones are forwarded again.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from collections.abc import Iterator


class Proxy:
    """``127.0.0.1:port`` → ``target``; ``partition()`` / ``heal()``."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._open = threading.Event()
        self._open.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._links: list[tuple[socket.socket, socket.socket | None]] = []
        self._thread = threading.Thread(target=self._accept, name="proxy", daemon=True)

    def start(self) -> Proxy:
        self._thread.start()
        return self

    def partition(self) -> None:
        """From now on, nothing passes (connections stay open)."""
        self._open.clear()

    def heal(self) -> None:
        """Cut the connections that lived through the partition; forward again."""
        with self._lock:
            links, self._links = self._links, []
        for client, upstream in links:
            for s in (client, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.shutdown(socket.SHUT_RDWR)
                    s.close()
        self._open.set()

    def close(self) -> None:
        self._stop.set()
        self.heal()
        self._listener.close()

    def _accept(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._open.is_set():  # held, silent, until the partition ends
                with self._lock:
                    self._links.append((client, None))
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._links.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, client: socket.socket, upstream: socket.socket) -> None:
        peer = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as sel:
            for s in peer:
                s.setblocking(True)
                sel.register(s, selectors.EVENT_READ)
            try:
                while not self._stop.is_set():
                    if not self._open.is_set():  # partitioned: read nothing, send nothing
                        self._open.wait(0.2)
                        if client.fileno() < 0:
                            return
                        continue
                    for key, _ in sel.select(timeout=0.2):
                        if not self._open.is_set():
                            break
                        source: socket.socket = key.fileobj  # type: ignore[assignment]
                        data = source.recv(65536)
                        if not data:
                            return self._drop(client, upstream)
                        peer[source].sendall(data)
            except (OSError, ValueError):
                self._drop(client, upstream)

    def _drop(self, client: socket.socket, upstream: socket.socket) -> None:
        with self._lock:
            self._links = [link for link in self._links if link[0] is not client]
        for s in (client, upstream):
            s.close()


@contextlib.contextmanager
def proxy_to(host: str, port: int) -> Iterator[Proxy]:
    proxy = Proxy((host, port)).start()
    try:
        yield proxy
    finally:
        proxy.close()
