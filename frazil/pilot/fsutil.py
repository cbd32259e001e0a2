"""Temporary files beside their final name, so that a rename can publish them atomically."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

log = logging.getLogger(__name__)

#: Suffix of files that are still being written; a reader never sees them under a final name.
PARTIAL_SUFFIX = ".part"


def create_temp(directory: Path, name: str) -> tuple[int, Path]:
    """Create a new, empty file in ``directory`` for eventually becoming ``name``.

    Returns an open write descriptor and the path. The file is created with mode 0o666 minus
    the umask, as a plain ``open`` would (``mkstemp``'s 0o600 would leave staged outputs
    unreadable to collaborators once renamed). Being in the same directory as its final name
    keeps the later ``os.replace`` on one filesystem, hence atomic.
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        # Shortened so that a long final name still leaves room within NAME_MAX (255).
        path = directory / f".{name[:200]}.{secrets.token_hex(6)}{PARTIAL_SUFFIX}"
        try:
            return os.open(path, flags, 0o666), path
        except FileExistsError:  # pragma: no cover - 48 random bits colliding
            continue


def discard(path: Path) -> None:
    """Remove ``path`` if it exists; a failure is logged, not raised (it is only cleanup)."""
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("could not remove %s: %s", path, exc)
