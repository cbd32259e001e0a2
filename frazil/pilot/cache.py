"""A directory of downloaded files kept by sha256, shared by the pilots of one node or site.

The rule of "The IceProd Framework" for cached software (§3.1.1): a cached copy is used
only after its checksum has been compared with the expected one, so a corrupted or outdated
entry is never used. Here the entry's name *is* its expected sha256, so every hit re-hashes the
file; a mismatch deletes it and counts as a miss.

Layout: ``<root>/<first two hex digits>/<sha256>``. Entries are written to a temporary name in
their own directory and renamed with ``os.replace``, so pilots that fill the same entry at once
each publish a complete copy and readers see either the old file or a whole new one.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from frazil.errors import TransferError
from frazil.pilot.checksum import compute, copy_stream, parse_checksum
from frazil.pilot.fsutil import create_temp, discard

log = logging.getLogger(__name__)

#: Entries are read-only: a task that writes to its input must not be able to reach the cache.
ENTRY_MODE = 0o444


class Cache:
    """A download cache rooted at ``root``; the directory is created on the first ``put``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    def entry_path(self, sha256: str) -> Path:
        """Where the entry for ``sha256`` (bare or ``"sha256:…"``) lives, whether or not it does."""
        _, digest = parse_checksum(sha256, "sha256")
        return self.root / digest[:2] / digest

    def get(self, sha256: str) -> Path | None:
        """The cached file with this sha256, re-verified; ``None`` on a miss.

        An entry whose contents no longer hash to its name is deleted and reported as a miss.
        """
        _, digest = parse_checksum(sha256, "sha256")
        path = self.entry_path(digest)
        try:
            before = path.stat()
        except FileNotFoundError:
            log.debug("cache miss for %s", digest)
            return None
        except OSError as exc:
            log.warning("cache entry %s cannot be examined: %s", path, exc)
            return None
        try:
            actual = compute(path).sha256
        except TransferError as exc:  # deleted by another pilot meanwhile, or unreadable
            log.warning("cache entry %s cannot be read: %s", path, exc)
            return None
        if actual != digest:
            log.warning("cache entry %s is corrupted (its sha256 is %s); removing it", path, actual)
            self._remove_if_unchanged(path, before)
            return None
        with contextlib.suppress(OSError):  # another user's entry: its time stays
            os.utime(path)  # last use, for whoever prunes the cache by age
        log.debug("cache hit for %s", digest)
        return path

    def put(self, path: str | os.PathLike[str], sha256: str) -> Path:
        """Store a copy of ``path`` as the entry for ``sha256`` and return the entry's path.

        The copy is hashed while it is written; if it does not match ``sha256`` nothing is
        stored and ``TransferError`` is raised. Safe to call from several pilots at once.
        """
        _, digest = parse_checksum(sha256, "sha256")
        target = self.entry_path(digest)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = create_temp(target.parent, digest)
        except OSError as exc:
            raise TransferError(f"cannot write to the cache {self.root}: {exc}") from exc
        try:
            try:
                with os.fdopen(fd, "wb") as out, open(path, "rb") as source:
                    actual = copy_stream(source, out).sha256
                if actual != digest:
                    raise TransferError(
                        f"{os.fspath(path)}: sha256 checksum mismatch: expected {digest}, "
                        f"got {actual}; not cached"
                    )
                os.chmod(temp, ENTRY_MODE)
                # No fsync: a crash may leave a short entry, which the next get detects.
                os.replace(temp, target)
            except OSError as exc:
                raise TransferError(f"cannot cache {os.fspath(path)}: {exc}") from exc
        except BaseException:
            discard(temp)
            raise
        log.debug("cached %s as %s", path, target)
        return target

    @staticmethod
    def _remove_if_unchanged(path: Path, seen: os.stat_result) -> None:
        """Delete ``path`` unless another pilot has replaced it since it was examined."""
        try:
            now = path.stat()
            if (now.st_dev, now.st_ino) == (seen.st_dev, seen.st_ino):
                path.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove corrupted cache entry %s: %s", path, exc)
