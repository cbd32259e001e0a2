"""The interface that transfer protocols implement, and the one for local files.

A protocol moves bytes and nothing else: ``transfer`` picks the protocol by URL scheme, gives
``get`` a temporary file to fill, and computes and verifies checksums itself, so that a new
protocol cannot forget to.
"""

from __future__ import annotations

import logging
import os
import shutil
import typing
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from frazil.errors import TransferError
from frazil.pilot.fsutil import create_temp, discard

log = logging.getLogger(__name__)

COPY_CHUNK = 1 << 20


class SourceMissing(TransferError):
    """The file to transfer does not exist (a ``transfer: maybe`` entry may skip it)."""


class Protocol(typing.Protocol):
    """Moves whole files between a URL and a local path.

    Contract for every implementation:

    - ``get`` writes the complete contents of ``url`` to ``dest``, an existing empty file that
      the caller renames into place only after verifying it; ``put`` stores all of ``src``
      at ``url``, and readers of ``url`` never see a partial file where the protocol allows.
    - Failures raise ``TransferError`` (``SourceMissing`` when the source does not exist),
      with the URL (passwords and query strings redacted by ``redact``) in the message.
    - Transient failures are retried inside the protocol, a bounded number of times.
    """

    def get(self, url: str, dest: Path) -> None:
        """Download ``url`` into the file ``dest``."""

    def put(self, src: Path, url: str) -> None:
        """Upload the file ``src`` to ``url``."""


def redact(url: str) -> str:
    """``url`` fit for logs: no password, no query (presigned URLs carry credentials there)."""
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        netloc = netloc.replace(f":{parts.password}@", ":***@", 1)
    query = "***" if parts.query else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def file_url_path(url: str) -> Path:
    """The local path of a ``file://`` URL (only an empty host or ``localhost`` is local)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        raise TransferError(f"not a file URL: {redact(url)}")
    if parts.netloc not in ("", "localhost"):
        raise TransferError(f"file URL names a remote host {parts.netloc!r}: {redact(url)}")
    return Path(unquote(parts.path))


class FileProtocol:
    """``file://`` URLs: copies on this machine or a shared filesystem."""

    def get(self, url: str, dest: Path) -> None:
        """Copy the file at ``url`` to ``dest``."""
        source = file_url_path(url)
        try:
            shutil.copyfile(source, dest)
        except FileNotFoundError as exc:
            raise SourceMissing(f"no such file: {source}") from exc
        except IsADirectoryError as exc:
            raise TransferError(f"{source} is a directory, not a file") from exc
        except OSError as exc:
            raise TransferError(f"cannot copy {source} to {dest}: {exc}") from exc
        log.debug("copied %s to %s", source, dest)

    def put(self, src: Path, url: str) -> None:
        """Copy ``src`` to ``url``: to a temporary name beside it, then renamed into place."""
        target = file_url_path(url)
        if target.is_dir():
            raise TransferError(f"cannot write {target}: it is a directory")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = create_temp(target.parent, target.name)
        except OSError as exc:
            raise TransferError(f"cannot create a file in {target.parent}: {exc}") from exc
        try:
            try:
                with os.fdopen(fd, "wb") as out, open(src, "rb") as stream:
                    shutil.copyfileobj(stream, out, COPY_CHUNK)
                os.replace(temp, target)
            except OSError as exc:
                if not src.exists():
                    raise SourceMissing(f"no such file: {src}") from exc
                raise TransferError(f"cannot copy {src} to {target}: {exc}") from exc
        except BaseException:
            discard(temp)
            raise
        log.debug("copied %s to %s", src, target)
