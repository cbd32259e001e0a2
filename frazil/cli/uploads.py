"""The files a config names by paths relative to its own file, read, hashed and uploaded.

``frazil submit`` sends them before the config (``PUT /blobs/{sha256}``, only those the
server does not keep yet) and the config with ``{path: sha256}``: the server pins each path
to its file, so a task runs with exactly what was submitted, at any site. Absolute paths and
URLs are a site's and stay as they are (``frazil.model.uploads``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from frazil.client import Client
from frazil.errors import ConfigError, Problem, TooLarge
from frazil.wire import BlobLimits


@dataclass(frozen=True)
class LocalFile:
    """A file a config names: its path in the config, where it is, its checksum and size."""

    where: str
    path: str
    file: Path
    sha256: str
    size: int


@dataclass(frozen=True)
class Sent:
    """What an upload did: files and bytes sent, files the server kept already."""

    files: int
    bytes: int
    kept: int


def collect(config_file: Path, text: str) -> list[LocalFile]:
    """The local files the config in ``text`` (read from ``config_file``) names, hashed.

    A config with errors gives none (the server's check reports them). A path that climbs
    out of the config's directory, or a file the config names as it is that does not exist,
    is a ``ConfigError`` located by line and key.
    """
    from frazil.loader import inspect_text, locate  # noqa: PLC0415 - the config model is heavy
    from frazil.model.uploads import climbs_out, references  # noqa: PLC0415

    inspection = inspect_text(text, str(config_file))
    if inspection.config is None or not inspection.report.ok:
        return []
    root = config_file.absolute().parent
    problems: list[Problem] = []
    found: list[LocalFile] = []
    for ref in references(inspection.config):
        climbing = climbs_out(ref)
        if climbing is not None:
            problems.append(climbing)
            continue
        file = root / ref.path
        if not file.is_file():
            if ref.surely_a_file:
                what = "is not a file" if file.exists() else "does not exist"
                problems.append(Problem(ref.where, f"{ref.path!r} {what} (looked for {file})"))
            continue  # a path an expression made: the site's, perhaps
        try:
            sha, size = _hash(file)
        except OSError as exc:
            problems.append(Problem(ref.where, f"cannot read {file}: {exc}"))
            continue
        found.append(LocalFile(ref.where, ref.path, file, sha, size))
    if problems:
        raise ConfigError(locate(problems, text, str(config_file)), str(config_file))
    return found


def _hash(file: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(file, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def check_sizes(files: list[LocalFile], limits: BlobLimits) -> None:
    """``TooLarge`` for a file over the server's cap or files over its total, before any
    is sent."""
    for f in files:
        if f.size > limits.max_bytes:
            raise TooLarge(
                f"{f.file} ({f.where}) is {f.size:,} bytes; the server takes files of at most "
                f"{limits.max_bytes:,} bytes"
            )
    total = sum({f.sha256: f.size for f in files}.values())
    if total > limits.max_total:
        raise TooLarge(
            f"the {len(files)} files the config names come to {total:,} bytes; the server "
            f"takes at most {limits.max_total:,} bytes for one submission"
        )


def upload(client: Client, files: list[LocalFile]) -> Sent:
    """Send each file the server does not keep yet (each content once)."""
    unique = {f.sha256: f for f in files}
    missing = client.missing_blobs(list(unique))
    sent = Sent(0, 0, len(unique) - len(missing))
    for sha in missing:
        f = unique[sha]
        content = f.file.read_bytes()
        if hashlib.sha256(content).hexdigest() != sha:
            raise ConfigError(
                [Problem(f.where, f"{f.file} changed while it was being submitted")], str(f.file)
            )
        client.put_blob(sha, content)
        sent = Sent(sent.files + 1, sent.bytes + len(content), sent.kept)
    return sent
