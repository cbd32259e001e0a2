"""Files uploaded with a config: kept by checksum, checked at submission, served to pilots.

An upload is any user's (``PUT /blobs/{sha256}``): the content must hash to its name and
be at most ``max_bytes``. A submission names its uploads ({relative path: sha256}); each
must already be kept, and together they may hold at most ``max_total`` bytes. A pilot may
fetch an uploaded file with its attempt's passkey, and only one that its dataset's configs
name, so a passkey opens nothing else.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping

from sqlalchemy import Connection, select

from frazil.errors import BadRequest, NotFound, TooLarge
from frazil.model.states import ACTIVE_TASK_STATES
from frazil.model.uploads import local_path
from frazil.services.attempts import authenticated
from frazil.store.blobs import BlobStore
from frazil.store.db import Database
from frazil.store.schema import dataset_config
from frazil.wire import BlobLimits, BlobStored, is_sha256

#: One uploaded file, and all the files of one submission together.
DEFAULT_LIMITS = BlobLimits(max_bytes=8 * 1024 * 1024, max_total=64 * 1024 * 1024)
#: A submission names at most this many files.
MAX_UPLOADS = 1000


def _store(blobs: BlobStore | None) -> BlobStore:
    if blobs is None:
        raise NotFound("this server keeps no uploaded files (it has no [server] blob_dir)")
    return blobs


def put(blobs: BlobStore | None, sha256: str, content: str, limits: BlobLimits) -> BlobStored:
    """Keep the base64 ``content`` under ``sha256`` (``TooLarge`` past ``max_bytes``,
    ``BadRequest`` for bad base64 or another checksum)."""
    store = _store(blobs)
    if len(content) > (limits.max_bytes + 2) // 3 * 4:  # before decoding: base64 is 4/3
        raise TooLarge(f"an uploaded file may be at most {limits.max_bytes} bytes")
    try:
        data = base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"the content is not base64: {exc}") from exc
    if len(data) > limits.max_bytes:
        raise TooLarge(
            f"the file is {len(data)} bytes; an uploaded file may be at most {limits.max_bytes}"
        )
    created = store.put(sha256, data)
    return BlobStored(sha256, len(data), created)


def missing(blobs: BlobStore | None, checksums: list[str]) -> list[str]:
    """Which of ``checksums`` the store does not keep (``BadRequest`` for one that is not
    a sha256)."""
    store = _store(blobs)
    return [sha for sha in dict.fromkeys(checksums) if store.size(sha) is None]


def content(blobs: BlobStore | None, sha256: str) -> bytes:
    """The kept file's bytes; ``NotFound`` if there is none."""
    data = _store(blobs).read(sha256)
    if data is None:
        raise NotFound(f"no uploaded file {sha256}")
    return data


def check_uploads(
    blobs: BlobStore | None, uploads: Mapping[str, str], limits: BlobLimits
) -> dict[str, str]:
    """A submission's uploads, checked: normalized relative paths that stay in the config's
    directory, each naming a file this server keeps, all of them within ``max_total``."""
    if not uploads:
        return {}
    if len(uploads) > MAX_UPLOADS:
        raise TooLarge(f"{len(uploads)} uploaded files; a submission may name {MAX_UPLOADS}")
    store = _store(blobs)
    total = 0
    for path, sha in uploads.items():
        if local_path(path) != path or path == ".." or path.startswith("../"):
            raise BadRequest(f"uploads: {path!r} is not a normalized path inside the config's")
        if not is_sha256(sha):
            raise BadRequest(f"uploads: {path!r}: {sha[:80]!r} is not a sha256 checksum")
        found = store.size(sha)
        if found is None:
            raise NotFound(f"uploads: {path!r}: no uploaded file {sha}; upload it first")
        total += found
    if total > limits.max_total:
        raise TooLarge(
            f"the uploaded files come to {total} bytes; a submission may have {limits.max_total}"
        )
    return dict(uploads)


def for_attempt(
    db: Database, blobs: BlobStore | None, task_id: int, attempt: int, passkey: str, sha: str
) -> bytes:
    """An uploaded file for a current attempt whose dataset's configs name it."""

    def named(conn: Connection) -> bool:
        row, _ = authenticated(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
        texts = conn.execute(
            select(dataset_config.c.uploads).where(
                dataset_config.c.dataset_id == row.dataset_id,
                dataset_config.c.uploads.is_not(None),
            )
        ).scalars()
        return any(sha in json.loads(text).values() for text in texts)

    with db.read() as conn:
        if not named(conn):
            raise NotFound(f"task {task_id}'s dataset has no uploaded file {sha}")
    return content(blobs, sha)
