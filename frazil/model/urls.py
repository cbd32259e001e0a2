"""Where a task's data and code may come from and land: the rules the resolver checks."""

from __future__ import annotations

import posixpath
from urllib.parse import urlsplit

#: Where a pilot fetches an external module's code from (plain http could be tampered with).
MODULE_URL_SCHEMES = ("https", "file", "")


def plain_file_name(name: str) -> bool:
    """True for a name that can only land in a task's own directory (the pilot's rule)."""
    return name not in ("", ".", "..") and not any(c in name for c in "/\\\0")


def climbs(path: str) -> bool:
    """True for a relative path that leaves the directory it is relative to."""
    relative = posixpath.normpath(path)
    return relative == ".." or relative.startswith("../")


def url_scheme(url: str) -> str | None:
    """The scheme of ``url`` ("" for a path), or None if it cannot be read as a URL (an
    unclosed or invalid ``[host]``)."""
    try:
        return urlsplit(url).scheme
    except ValueError:
        return None
