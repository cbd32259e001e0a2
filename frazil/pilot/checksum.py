"""Checksums of files, computed in one streaming pass, and their verification
("The IceProd Framework", §3.8.3).

sha256 is always computed; md5 only on request, because IceProd-era catalogues store md5 while
everything new stores sha256. A checksum may be written ``"sha256:ab12…"`` or given as a bare
hex digest together with its type.
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import BinaryIO

from frazil.errors import TransferError

log = logging.getLogger(__name__)

#: Bytes read per step: large enough for throughput, small enough to keep memory flat.
CHUNK_SIZE = 1 << 20

#: Checksum types understood here, with the length of their hex digest.
DIGEST_LENGTHS = {"sha256": 64, "md5": 32}


@dataclass(frozen=True)
class Checksums:
    """Size and digests of one file's contents."""

    size: int
    sha256: str
    md5: str | None = None

    def digest(self, checksum_type: str) -> str | None:
        """The digest of ``checksum_type`` (``None`` for md5 when it was not computed)."""
        if checksum_type == "sha256":
            return self.sha256
        if checksum_type == "md5":
            return self.md5
        raise TransferError(_unknown_type(checksum_type))


class Hasher:
    """Incremental hashing of a byte stream, for callers that see the bytes go by."""

    def __init__(self, *, md5: bool = False) -> None:
        self._sha256 = hashlib.sha256()
        # md5 identifies contents here; it protects nothing, hence usedforsecurity=False.
        self._md5 = hashlib.md5(usedforsecurity=False) if md5 else None
        self._size = 0

    def update(self, data: bytes) -> None:
        """Feed the next bytes of the stream."""
        self._sha256.update(data)
        if self._md5 is not None:
            self._md5.update(data)
        self._size += len(data)

    def result(self) -> Checksums:
        """The checksums of everything fed so far."""
        md5 = self._md5.hexdigest() if self._md5 is not None else None
        return Checksums(size=self._size, sha256=self._sha256.hexdigest(), md5=md5)


def copy_stream(source: BinaryIO, target: BinaryIO, *, md5: bool = False) -> Checksums:
    """Copy ``source`` to ``target`` in chunks, hashing on the way; the checksums of the bytes."""
    hasher = Hasher(md5=md5)
    while chunk := source.read(CHUNK_SIZE):
        hasher.update(chunk)
        target.write(chunk)
    return hasher.result()


def compute(path: str | os.PathLike[str], *, md5: bool = False) -> Checksums:
    """Hash the file at ``path`` in one read pass. Raises ``TransferError`` if it cannot be read."""
    hasher = Hasher(md5=md5)
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(CHUNK_SIZE):
                hasher.update(chunk)
    except OSError as exc:
        raise TransferError(f"cannot read {os.fspath(path)} to checksum it: {exc}") from exc
    return hasher.result()


def parse_checksum(value: str, checksum_type: str = "sha256") -> tuple[str, str]:
    """Split ``"type:hexdigest"`` (or a bare digest of ``checksum_type``) into (type, digest).

    A prefix in ``value`` wins over ``checksum_type``. The digest is checked for its length and
    hex characters, and returned in lower case.
    """
    kind, sep, digest = value.strip().partition(":")
    if not sep:
        kind, digest = checksum_type, value.strip()
    kind = kind.strip().lower()
    digest = digest.strip().lower()
    if kind not in DIGEST_LENGTHS:
        raise TransferError(_unknown_type(kind))
    if len(digest) != DIGEST_LENGTHS[kind] or any(c not in "0123456789abcdef" for c in digest):
        raise TransferError(f"malformed {kind} checksum {value!r}")
    return kind, digest


def check(checksums: Checksums, checksum_type: str, expected: str, name: str) -> None:
    """Raise ``TransferError`` unless ``checksums`` hold ``expected`` (see ``parse_checksum``)."""
    kind, want = parse_checksum(expected, checksum_type)
    got = checksums.digest(kind)
    if got is None:
        raise TransferError(f"{name}: no {kind} checksum was computed to compare with {want}")
    if got != want:
        raise TransferError(f"{name}: {kind} checksum mismatch: expected {want}, got {got}")


def verify(path: str | os.PathLike[str], checksum_type: str, expected: str) -> Checksums:
    """Hash ``path`` and raise ``TransferError`` unless it matches ``expected``.

    The error names the file, the checksum type and both values. Returns the checksums.
    """
    kind, _ = parse_checksum(expected, checksum_type)
    checksums = compute(path, md5=kind == "md5")
    check(checksums, kind, expected, os.fspath(path))
    log.debug("%s: %s checksum verified", path, kind)
    return checksums


def _unknown_type(kind: str) -> str:
    return f"unknown checksum type {kind!r}; known: {', '.join(sorted(DIGEST_LENGTHS))}"
