"""An attempt's logs on the wire: chunks a pilot appends, the server's acknowledgements.

A log on the server is a stream of bytes that only grows. A pilot sends what it has not
seen acknowledged as ``LogChunk``s, each naming the byte offset it starts at; the server
appends the bytes past what it holds and answers the log's size (``LogAck``), where the
next chunk starts. A chunk sent twice (its answer was lost) changes nothing. Bytes travel
as base64, gzip-compressed first when ``gzip`` is set: every request body is JSON (the
server reads nothing else), and base64 keeps a byte offset exact where text would not (a
chunk may end inside a character).
"""

from __future__ import annotations

import base64
import binascii
import gzip as gzip_module
import zlib
from dataclasses import dataclass
from typing import Any, ClassVar

from frazil.wire.checks import STRICT, bad, length

#: The header of a log's answer that names the attempt it is of.
ATTEMPT_HEADER = "Frazil-Attempt"
#: The most bytes one chunk may carry once decoded (a pilot sends 1 MiB at most).
MAX_CHUNK = 4 * 1024 * 1024
#: A log's name: what ``frazil logs --name`` takes and the file name on the server.
LOG_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def check_log_name(shape: str, name: str) -> None:
    """A log name is 1-100 letters, digits, '_', '.' or '-', starting with a letter or digit
    (so that it is a plain file name: never ``..``, never hidden)."""
    if not 1 <= len(name) <= 100 or not set(name) <= LOG_NAME_CHARS or name[0] in "_.-":
        raise bad(
            shape, "name", name, "1-100 letters, digits, '_', '.' or '-', first a letter or digit"
        )


@dataclass(frozen=True)
class LogChunk:
    """Bytes of the log ``name`` from byte ``offset`` on (base64; gzip-compressed first if
    ``gzip``)."""

    __pydantic_config__: ClassVar[dict[str, Any]] = STRICT

    name: str
    offset: int
    data: str
    gzip: bool = False

    def __post_init__(self) -> None:
        check_log_name("LogChunk", self.name)
        if self.offset < 0:
            raise bad("LogChunk", "offset", self.offset, "at least 0")
        length("LogChunk", "data", self.data, 2 * MAX_CHUNK)

    @classmethod
    def of(cls, name: str, offset: int, data: bytes, *, compress: bool = True) -> LogChunk:
        """``data`` as a chunk (compressed when that makes it smaller)."""
        packed = gzip_module.compress(data, compresslevel=6, mtime=0) if compress else data
        use = compress and len(packed) < len(data)
        return cls(name, offset, base64.b64encode(packed if use else data).decode(), use)

    def payload(self, most: int = MAX_CHUNK) -> bytes:
        """The chunk's bytes; a ``ValueError`` when they are not base64 (or gzip), or would
        decode to more than ``most`` bytes (checked while decompressing, never after)."""
        try:
            raw = base64.b64decode(self.data, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"LogChunk.data of log {self.name!r} is not base64: {exc}") from exc
        if not self.gzip:
            if len(raw) > most:
                raise ValueError(f"LogChunk of log {self.name!r} holds more than {most:,} bytes")
            return raw
        inflate = zlib.decompressobj(wbits=31)  # gzip framing
        try:
            out = inflate.decompress(raw, most + 1)
        except zlib.error as exc:
            raise ValueError(f"LogChunk.data of log {self.name!r} is not gzip: {exc}") from exc
        if len(out) > most or inflate.unconsumed_tail:
            raise ValueError(f"LogChunk of log {self.name!r} decodes to more than {most:,} bytes")
        return out

    @property
    def end(self) -> int:
        """Where the chunk's bytes end (decodes it: for tests and the pilot's own use)."""
        return self.offset + len(self.payload())


@dataclass(frozen=True)
class LogAck:
    """The server holds ``size`` bytes of the log ``name`` of an attempt: the next chunk
    starts there. ``limit`` is the most it keeps of one log; ``error`` says why a chunk was
    not taken (past the limit, a gap), empty when it was."""

    task_id: int
    attempt: int
    name: str
    size: int
    limit: int
    error: str = ""


@dataclass(frozen=True)
class LogPart:
    """Bytes ``start`` to ``start + len(data)`` of one log of one attempt, which holds
    ``total`` bytes now (what ``GET /tasks/{id}/logs/{name}`` answers, read by the client)."""

    attempt: int
    name: str
    start: int
    total: int
    data: bytes

    @property
    def end(self) -> int:
        """Where the next read starts."""
        return self.start + len(self.data)
