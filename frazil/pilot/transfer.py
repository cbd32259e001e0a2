"""Staging files in and out of a task's directory, over protocols chosen by URL scheme.

``stage_in`` fills a temporary file beside the destination and renames it only after its
checksum matched, so a failed or corrupt transfer never leaves a file under the final name.
``stage_out`` computes the checksums the server records ("The IceProd Framework", §3.8.3)
and uploads.

Where a file is named, three forms are accepted: a URL whose scheme has a protocol registered
(``file``, ``http`` and ``https`` are built in; ``register_protocol`` adds more), an absolute
path, or a relative path, taken relative to ``base`` — a directory or a base URL such as the
site's data store. A relative path may not climb out of its base (``../../etc/passwd``).
"""

from __future__ import annotations

import logging
import os
import posixpath
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from frazil.errors import TransferError
from frazil.pilot.cache import Cache
from frazil.pilot.checksum import Checksums, check, compute, copy_stream, parse_checksum
from frazil.pilot.fsutil import create_temp, discard
from frazil.pilot.httptransfer import HttpProtocol
from frazil.pilot.protocols import FileProtocol, Protocol, SourceMissing, file_url_path, redact

log = logging.getLogger(__name__)

# What callers of stage_in and stage_out need comes from here, the errors included.
__all__ = [
    "Checksums",
    "Protocol",
    "SourceMissing",
    "default_local_name",
    "get_protocol",
    "register_protocol",
    "resolve",
    "safe_local_name",
    "stage_in",
    "stage_out",
    "unregister_protocol",
]

_PROTOCOLS: dict[str, Protocol] = {
    "file": FileProtocol(),
    "http": HttpProtocol(),
    "https": HttpProtocol(),
}


def register_protocol(scheme: str, handler: Protocol) -> Protocol | None:
    """Use ``handler`` for URLs of ``scheme`` from now on; returns the handler it replaces."""
    scheme = scheme.lower().removesuffix("://")
    previous = _PROTOCOLS.get(scheme)
    _PROTOCOLS[scheme] = handler
    return previous


def unregister_protocol(scheme: str) -> Protocol | None:
    """Stop handling ``scheme``; returns the handler removed, if there was one."""
    return _PROTOCOLS.pop(scheme.lower().removesuffix("://"), None)


def get_protocol(scheme: str) -> Protocol:
    """The handler for ``scheme``; ``TransferError`` naming the known schemes if there is none."""
    try:
        return _PROTOCOLS[scheme.lower()]
    except KeyError:
        known = ", ".join(sorted(_PROTOCOLS))
        raise TransferError(f"unsupported URL scheme {scheme!r}; known schemes: {known}") from None


def resolve(url: str, base: str | os.PathLike[str] | None = None) -> tuple[str, str]:
    """(scheme, URL) for a URL or a path; paths become ``file://`` URLs.

    Relative paths (and ``file:`` URLs holding one) are taken relative to ``base``, a directory
    or a URL, or the current directory without one. A relative path that climbs out of its base
    raises ``TransferError``; absolute paths and full URLs are used as they are.
    """
    if not url:
        raise TransferError("empty URL or path")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme and scheme != "file":
        get_protocol(scheme)  # unknown schemes fail here, before any work is done
        return scheme, url
    if scheme == "file":
        path = os.fspath(file_url_path(url)) if parts.path.startswith("/") else unquote(parts.path)
    else:
        path = url
    if posixpath.isabs(path):
        return "file", Path(path).as_uri()
    relative = _contained(path, url, base)
    if base is None:
        return "file", (Path.cwd() / relative).as_uri()
    base_text = os.fspath(base)
    base_scheme = urlsplit(base_text).scheme.lower()
    if base_scheme and base_scheme != "file":
        get_protocol(base_scheme)
        return base_scheme, base_text.rstrip("/") + "/" + quote(relative)
    root = file_url_path(base_text) if base_scheme == "file" else Path(base_text)
    return "file", (root.absolute() / relative).as_uri()


def _contained(path: str, original: str, base: str | os.PathLike[str] | None) -> str:
    """``path`` normalized, refusing one that climbs above its starting point.

    The check is on the text, not on resolved symlinks: what a config may not do is name
    ``..``; symlinks inside a site's data directory were put there by the site and are trusted.
    """
    relative = posixpath.normpath(path)
    if relative == ".." or relative.startswith("../"):
        where = os.fspath(base) if base is not None else "the current directory"
        raise TransferError(f"{original!r} escapes its base directory ({where})")
    return relative


def safe_local_name(name: str) -> str:
    """``name`` if it is a plain file name for a task's directory, else ``TransferError``.

    Refused: empty names, ``.`` and ``..``, and anything with a path separator or a NUL, so
    a staged file can land nowhere but in the task's own directory.
    """
    separators = {"/", "\\", "\0", os.sep} | ({os.altsep} if os.altsep else set())
    if name in ("", ".", "..") or any(s in name for s in separators):
        raise TransferError(f"unsafe local file name {name!r}: it must be a plain file name")
    return name


def default_local_name(url: str) -> str:
    """The last part of ``url``'s path, checked by ``safe_local_name``."""
    return safe_local_name(posixpath.basename(unquote(urlsplit(url).path.rstrip("/"))))


def stage_in(
    url: str,
    dest: str | os.PathLike[str],
    *,
    base: str | os.PathLike[str] | None = None,
    checksum: str | None = None,
    checksum_type: str = "sha256",
    cache: Cache | None = None,
    protocol: Protocol | None = None,
) -> Checksums:
    """Fetch ``url`` (or a path, see ``resolve``) to the file ``dest``; returns its checksums.

    ``checksum`` (``"sha256:…"``, ``"md5:…"`` or a bare digest of ``checksum_type``) is
    verified before ``dest`` appears; on any failure ``dest`` is left as it was. With a
    ``cache`` and a sha256 to look it up by, a verified cached copy is used instead of
    downloading, and a fresh download is added to the cache. ``protocol`` fetches instead of
    the one registered for the URL's scheme (one that carries credentials, say).
    """
    dest = Path(dest)
    scheme, target = resolve(url, base)
    handler = protocol or get_protocol(scheme)
    kind, digest = parse_checksum(checksum, checksum_type) if checksum else ("sha256", None)
    use_cache = cache is not None and digest is not None and kind == "sha256"
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, temp = create_temp(dest.parent, dest.name)
        os.close(fd)
    except OSError as exc:
        raise TransferError(f"cannot create a file in {dest.parent}: {exc}") from exc
    try:
        checksums = _from_cache(cache, digest, temp) if use_cache else None
        if checksums is None:
            handler.get(target, temp)
            checksums = compute(temp, md5=kind == "md5")
            if digest is not None:
                check(checksums, kind, digest, f"{redact(url)} (staged to {dest})")
            if use_cache:
                _to_cache(cache, temp, checksums.sha256)
        os.replace(temp, dest)
    except OSError as exc:
        discard(temp)
        raise TransferError(f"cannot stage {redact(url)} to {dest}: {exc}") from exc
    except BaseException:
        discard(temp)
        raise
    log.info("staged in %s to %s (%d bytes)", redact(url), dest, checksums.size)
    return checksums


def stage_out(
    src: str | os.PathLike[str],
    url: str,
    *,
    base: str | os.PathLike[str] | None = None,
    md5: bool = False,
) -> Checksums:
    """Send the file ``src`` to ``url`` (or a path, see ``resolve``); returns its checksums.

    A missing ``src`` raises ``SourceMissing``. The ``file`` protocol writes to a temporary
    name beside the target and renames it, creating parent directories as needed.
    """
    src = Path(src)
    scheme, target = resolve(url, base)
    handler = get_protocol(scheme)
    if not src.exists():
        raise SourceMissing(f"no such file: {src}")
    if not src.is_file():
        raise TransferError(f"{src} is not a regular file (pack a directory into a tarball)")
    try:
        handler.put(src, target)
    except OSError as exc:  # a third-party protocol that let one through
        raise TransferError(f"cannot stage {src} out to {redact(url)}: {exc}") from exc
    # Hashed after the upload, which has just brought the file into the page cache.
    checksums = compute(src, md5=md5)
    log.info("staged out %s to %s (%d bytes)", src, redact(url), checksums.size)
    return checksums


def _from_cache(cache: Cache | None, digest: str | None, temp: Path) -> Checksums | None:
    """Copy the cached entry for ``digest`` to ``temp``; ``None`` if there is none usable."""
    if cache is None or digest is None:
        return None
    entry = cache.get(digest)
    if entry is None:
        return None
    # Copied, not hard-linked: a link would share the entry's read-only mode and inode with
    # a task that may expect to modify its inputs.
    try:
        with open(entry, "rb") as source, open(temp, "wb") as out:
            checksums = copy_stream(source, out)
    except OSError as exc:  # removed by another pilot between get and copy
        log.warning("could not copy cache entry %s: %s", entry, exc)
        return None
    # The copy is hashed too: the entry may have changed after ``get`` verified it.
    if checksums.sha256 != digest:
        log.warning("cache entry %s changed while being copied; downloading instead", entry)
        return None
    log.info("using cached copy %s", entry)
    return checksums


def _to_cache(cache: Cache | None, path: Path, sha256: str) -> None:
    """Add a verified download to the cache; a full or read-only cache only costs a warning."""
    if cache is None:
        return
    try:
        cache.put(path, sha256)
    except TransferError as exc:
        log.warning("could not add %s to the cache: %s", path, exc)
