"""Files a submitter uploaded with a config, kept by the server under their sha256.

A module's code or a small input that a config names by a path relative to its own file is
uploaded (``PUT /blobs/{sha256}``) and pinned by its checksum: the server hands the task a
``frazil-blob:<sha256>/<name>`` reference instead of the path, which a pilot fetches from
the server it reports to (with its attempt's passkey) and verifies against the checksum.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: The scheme of an uploaded file's reference in a resolved spec.
BLOB_SCHEME = "frazil-blob"
_SHA256 = re.compile(r"^[0-9a-f]{64}\Z")
_REF = re.compile(r"^frazil-blob:([0-9a-f]{64})/([^/\\\0]+)\Z")


def is_sha256(text: str) -> bool:
    """True for a sha256 digest as 64 lowercase hexadecimal digits."""
    return bool(_SHA256.match(text))


def blob_ref(sha256: str, name: str) -> str:
    """The reference a spec carries for an uploaded file (``name``: its file name, which
    keeps its suffix, so the pilot still knows a ``.py`` from a tarball)."""
    return f"{BLOB_SCHEME}:{sha256}/{name}"


def parse_blob_ref(text: str) -> tuple[str, str] | None:
    """(sha256, file name) of a ``frazil-blob:`` reference; None for anything else."""
    match = _REF.match(text)
    return (match.group(1), match.group(2)) if match else None


@dataclass(frozen=True)
class BlobLimits:
    """What a server accepts: ``max_bytes`` per file and ``max_total`` for one submission's
    files together."""

    max_bytes: int
    max_total: int


@dataclass(frozen=True)
class BlobStored:
    """The answer to an upload: the file's checksum and size, and whether it was new."""

    sha256: str
    size: int
    created: bool
