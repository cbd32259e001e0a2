"""Uploaded files kept by their sha256: ``<root>/<sha256>``, each written once, atomically.

A file is written to a temporary name in the same directory, flushed, and renamed to its
checksum only after the bytes were hashed again: a reader finds a whole, verified file or
none. Content addressing makes a second upload of the same bytes a no-op.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

from frazil.errors import BadRequest, StoreError
from frazil.wire import is_sha256


class BlobStore:
    """Files by checksum under ``root`` (created, private to the server's user, on first
    write)."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path(self, sha256: str) -> Path:
        """Where the file of ``sha256`` is (or would be)."""
        if not is_sha256(sha256):
            raise BadRequest(f"not a sha256 checksum (64 lowercase hex digits): {sha256[:80]!r}")
        return self.root / sha256

    def size(self, sha256: str) -> int | None:
        """The file's size, or None if the store does not have it."""
        try:
            return self.path(sha256).stat().st_size
        except FileNotFoundError:
            return None

    def read(self, sha256: str) -> bytes | None:
        """The file's bytes, or None if the store does not have it."""
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            return None

    def put(self, sha256: str, content: bytes) -> bool:
        """Keep ``content`` under ``sha256``; True if it was new. ``BadRequest`` if the
        content's checksum is another."""
        target = self.path(sha256)
        actual = hashlib.sha256(content).hexdigest()
        if actual != sha256:
            raise BadRequest(f"the content's sha256 is {actual}, not {sha256}")
        if target.exists():
            return False
        temp = self.root / f".{sha256}.{secrets.token_hex(6)}.part"
        try:
            self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
            with open(temp, "xb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        except OSError as exc:
            temp.unlink(missing_ok=True)
            raise StoreError(f"cannot keep an uploaded file in {self.root}: {exc}") from exc
        return True
