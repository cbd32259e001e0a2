"""Compiling a task's Python source once per content, for the class runs of one pilot.

Every class run imports its module code afresh (``worker``), so without a cache each run
compiles the same source again; and Python's own ``__pycache__`` is no answer:
its files are checked by modification time (whole seconds) and size, so a same-size edit
within a second would run the old code, and it writes into the task's code directories.

Here a compiled module is stored under a key made of its path and the hash of its source
bytes, in a directory private to the module host: an edit, of any size at any time, is a new
key. ``install`` puts the cache in front of every directory that is not the interpreter's own,
``sys.path``'s and its packages' (the standard library and installed packages keep their
``.pyc`` files). A worker knows a module of the task's code by its loader, ``CachedSource``.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import marshal
import os
import sys
from importlib.machinery import (
    BYTECODE_SUFFIXES,
    EXTENSION_SUFFIXES,
    SOURCE_SUFFIXES,
    ExtensionFileLoader,
    FileFinder,
    SourceFileLoader,
    SourcelessFileLoader,
)
from types import CodeType


def source_key(path: str, source: bytes) -> str:
    """The key of ``path`` holding ``source``: a new one for any edit."""
    return hashlib.blake2b(os.fsencode(path) + b"\0" + source, digest_size=20).hexdigest()


class CachedSource(SourceFileLoader):
    """A source loader that reads every file and compiles it only when its content is new."""

    directory = ""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        key = source_key(path, source)
        stored = os.path.join(self.directory, key)
        with contextlib.suppress(OSError, ValueError, EOFError, TypeError):
            with open(stored, "rb") as f:
                code = marshal.loads(f.read())  # noqa: S302 - our own 0700 directory
            if isinstance(code, CodeType):
                return code
        code = self.source_to_code(source, path)
        partial = f"{stored}.{os.getpid()}"
        with contextlib.suppress(OSError):  # a cache that cannot be written only costs time
            with open(partial, "wb") as f:
                f.write(marshal.dumps(code))
            os.replace(partial, stored)
        return code


#: The interpreter's own directories (resolved once, in the host).
_ROOTS = tuple(
    {
        os.path.realpath(p)
        for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix)
    }
)


@functools.lru_cache(maxsize=4096)  # asked again for every entry at every run
def own(entry: str) -> bool:
    """Whether ``entry`` belongs to the interpreter (its standard library, its packages).
    (Not resolved through symbolic links: a linked path only costs its own compilation.)"""
    path = os.path.abspath(entry)
    return any(path == root or path.startswith(root + os.sep) for root in _ROOTS)


class _Finder(FileFinder):
    """A directory's finder that loads its source files through the cache."""

    def __init__(self, path: str) -> None:
        super().__init__(
            path,
            (ExtensionFileLoader, EXTENSION_SUFFIXES),
            (CachedSource, SOURCE_SUFFIXES),
            (SourcelessFileLoader, BYTECODE_SUFFIXES),
        )


def _hook(entry: str) -> _Finder:
    """``sys.path_hooks``' first: the directories that are not the interpreter's own."""
    where = entry or os.getcwd()
    if own(where) or not os.path.isdir(where):
        raise ImportError("not a directory of the task's code")
    return _Finder(entry)


def install(directory: str) -> None:
    """In a class run's process: load the source files of every directory that is not the
    interpreter's own (``sys.path``'s and its packages') through the cache in ``directory``."""
    CachedSource.directory = directory
    if _hook not in sys.path_hooks:
        sys.path_hooks.insert(0, _hook)
    for entry, finder in list(sys.path_importer_cache.items()):
        if not isinstance(finder, _Finder) and not own(entry or os.getcwd()):
            del sys.path_importer_cache[entry]  # found again, through the hook
