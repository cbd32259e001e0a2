"""Attempts' logs as files under one directory (``[server] log_dir``), each at most a cap.

A log lives at ``<dataset>/<task>/<attempt>/<name>.log`` under the root (numbers, and a
name that ``check_log_name`` allowed: a plain file name). The database row of a log keeps
that path relative to the root, so the directory can move. A log only grows: ``append``
takes bytes that start at an offset and keeps those past the file's size, under an
exclusive lock of the file (``flock``), so that two servers, or a retried request and its
first try, never write the same bytes twice. The file's size is the truth a pilot's next
chunk starts from.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from frazil.errors import LogGap, TooLarge

#: The default cap on one log (``[server] max_log_bytes``).
MAX_LOG_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class Appended:
    """A log after an append: its size in bytes, and its last bytes (as many as asked for)."""

    size: int
    tail: bytes


@dataclass(frozen=True)
class LogFiles:
    """The log directory ``root``; no log grows past ``max_bytes``."""

    root: Path
    max_bytes: int = MAX_LOG_BYTES

    @staticmethod
    def relative(dataset_id: int, task_id: int, attempt: int, name: str) -> str:
        """Where a log lives under the root (``name`` is checked by the wire shape)."""
        if "/" in name or name.startswith("."):
            raise ValueError(f"a log name cannot be a path: {name!r}")
        return f"{dataset_id}/{task_id}/{attempt}/{name}.log"

    def path(self, relative: str) -> Path:
        """The file of a log, from the path its row keeps (which never leaves the root)."""
        parts = Path(relative).parts
        if Path(relative).is_absolute() or ".." in parts:
            raise ValueError(f"a log's path must stay under the log directory: {relative!r}")
        return self.root / relative

    def size(self, relative: str) -> int:
        """The log's size in bytes (0: no file)."""
        try:
            return self.path(relative).stat().st_size
        except FileNotFoundError:
            return 0

    def append(
        self, relative: str, offset: int, data: bytes, what: str, *, tail: int = 0
    ) -> Appended:
        """Add the bytes of ``data`` (which starts at byte ``offset`` of the log) that the
        file does not hold yet; returns the log's size and its last ``tail`` bytes.

        Bytes the file holds already are taken as the same and left alone (a chunk sent
        again); ``LogGap`` if ``offset`` is past the end, ``TooLarge`` if the log would grow
        past the cap (and nothing is written). ``what`` names the log in those errors."""
        path = self.path(relative)
        flags = os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o600)
        except FileNotFoundError:  # the attempt's first log: its directory comes first
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, flags, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            size = os.fstat(fd).st_size
            if offset > size:
                raise LogGap(
                    f"{what} holds {size:,} bytes: a chunk must start at the expected offset "
                    f"{size}, not {offset}"
                )
            new = data[size - offset :]
            if size + len(new) > self.max_bytes:
                raise TooLarge(
                    f"{what} would hold {size + len(new):,} bytes, past the server's cap of "
                    f"{self.max_bytes:,} bytes per log ([server] max_log_bytes)"
                )
            view = memoryview(new)
            while view:
                view = view[os.write(fd, view) :]
            total = size + len(new)
            if tail <= 0:
                last = b""
            elif size == 0 or len(new) >= tail:  # the new bytes end the log: no read
                last = new[-tail:]
            else:
                last = os.pread(fd, tail, max(0, total - tail))
            return Appended(total, last)
        finally:
            os.close(fd)  # and with it the lock

    def replace(self, relative: str, data: bytes) -> int:
        """Make ``data`` the whole log (its last ``max_bytes`` bytes); returns its size."""
        path = self.path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        kept = data[-self.max_bytes :]
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(kept)
        tmp.replace(path)
        return len(kept)

    def read(self, relative: str, start: int = 0, end: int | None = None) -> bytes:
        """Bytes ``start`` up to ``end`` (the end of the file: None) of a log."""
        with open(self.path(relative), "rb") as f:
            f.seek(start)
            return f.read() if end is None else f.read(max(0, end - start))

    def remove(self, relative: str) -> None:
        """Remove a log's file (gone already: nothing to do)."""
        self.path(relative).unlink(missing_ok=True)

    def remove_attempt(self, dataset_id: int, task_id: int, attempt: int) -> None:
        """Remove an attempt's directory of logs, and its task's and dataset's if empty."""
        folder = self.root / str(dataset_id) / str(task_id) / str(attempt)
        shutil.rmtree(folder, ignore_errors=True)
        for parent in (folder.parent, folder.parent.parent):
            try:
                parent.rmdir()
            except OSError:
                break  # not empty (or gone): leave it
