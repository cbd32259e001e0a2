"""Sending an attempt's logs while they grow: what the server has not acknowledged yet.

The shipper knows, for each log file of the attempt, how many bytes the server holds (its
last ``LogAck``). With each heartbeat (or a multi-task pilot's exchange) it offers the bytes
after that, at most ``per_beat`` of them; at the end it sends the rest, compressed, in
slices that fit a request. A log never holds more than the server's ``limit`` (learnt from
its acknowledgements): while the task runs only the first half of that is sent; at the end
a longer log gets a marker line after that head and then its last bytes, so that it ends
at the limit, head and tail kept.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

from frazil.wire import LogAck, LogChunk

#: Bytes of each log sent with one heartbeat at most.
PER_BEAT = 256 * 1024
#: Bytes of one chunk at the end (before compression): one request each.
SLICE = 1024 * 1024
#: What the server keeps of one log unless its acknowledgements say otherwise.
LIMIT = 32 * 1024 * 1024


class LogShipper:
    """The logs ``files`` (name → path) of one attempt, and how much of each the server holds."""

    def __init__(
        self, files: Mapping[str, Path], *, per_beat: int = PER_BEAT, limit: int = LIMIT
    ) -> None:
        self.files = dict(files)
        self.per_beat = per_beat
        self.limit = limit
        self.acked = dict.fromkeys(self.files, 0)
        self._lock = threading.Lock()

    def _size(self, name: str) -> int:
        try:
            return self.files[name].stat().st_size
        except FileNotFoundError:
            return 0

    def _read(self, name: str, start: int, end: int) -> bytes:
        with open(self.files[name], "rb") as f:
            f.seek(start)
            return f.read(end - start)

    def pending(self) -> list[LogChunk]:
        """What to send with a heartbeat: each log's new bytes, up to ``per_beat`` of them,
        and never past the first half of the limit (the head of a log that may grow long)."""
        chunks = []
        with self._lock:
            for name, start in self.acked.items():
                end = min(self._size(name), start + self.per_beat, self.limit // 2)
                if end > start:
                    chunks.append(LogChunk.of(name, start, self._read(name, start, end)))
        return chunks

    def take(self, acks: Iterable[LogAck]) -> None:
        """The server's word on how much it holds of each log (and its limit)."""
        with self._lock:
            for ack in acks:
                if ack.name in self.acked:
                    self.acked[ack.name] = ack.size
                if ack.limit > 0:
                    self.limit = ack.limit

    def rest(self) -> list[LogChunk]:
        """Everything not acknowledged yet, in slices of ``SLICE`` bytes: the whole log if
        it fits in the limit, else up to half of it, a marker line, and its last bytes."""
        chunks: list[LogChunk] = []
        with self._lock:
            for name, start in self.acked.items():
                size = self._size(name)
                if size <= self.limit:
                    chunks.extend(self._slices(name, start, size, start, b""))
                    continue
                head = max(start, self.limit // 2)
                chunks.extend(self._slices(name, start, head, start, b""))
                room = self.limit - head
                for _ in range(3):  # the marker's length depends on the count it names
                    left_out = size - head - room
                    marker = f"\n[... {left_out:,} bytes of this log left out ...]\n".encode()
                    room = max(0, self.limit - head - len(marker))
                chunks.extend(self._slices(name, size - room, size, head, marker))
        return chunks

    def _slices(
        self, name: str, start: int, end: int, offset: int, before: bytes
    ) -> list[LogChunk]:
        """Bytes ``start`` to ``end`` of a log file, after ``before``, as chunks from the
        server's offset ``offset`` on."""
        out = []
        pending = before
        while start < end or pending:
            take = min(end - start, SLICE - len(pending)) if start < end else 0
            data = pending + (self._read(name, start, start + take) if take > 0 else b"")
            if data:
                out.append(LogChunk.of(name, offset, data))
            offset += len(data)
            start += max(take, 0)
            pending = b""
        return out
