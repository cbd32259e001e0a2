"""Compiling a task's Python source once per content, for the class runs of one pilot.

Every class run imports its module code afresh in a new process (``classrun``), so without a
cache each run compiles the same source again; and Python's own ``__pycache__`` is no answer:
its files are checked by modification time (whole seconds) and size, so a same-size edit
within a second would run the old code, and it writes into the task's code directories.

Here a compiled module is stored under a key made of its path and the hash of its source
bytes, in a directory private to the module host: an edit, of any size at any time, is a new
key. ``install`` puts the cache in front of every directory of ``sys.path`` that is not the
interpreter's own (the standard library and installed packages keep their ``.pyc`` files).
"""

from __future__ import annotations

import contextlib
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


class _CachedSource(SourceFileLoader):
    """A source loader that reads every file and compiles it only when its content is new."""

    directory = ""

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        key = hashlib.blake2b(os.fsencode(path) + b"\0" + source, digest_size=20).hexdigest()
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


def _own(entry: str) -> bool:
    """Whether ``entry`` belongs to the interpreter (its standard library, its packages).
    (Not resolved through symbolic links: a linked path only costs its own compilation.)"""
    path = os.path.abspath(entry)
    return any(path == root or path.startswith(root + os.sep) for root in _ROOTS)


def install(directory: str) -> None:
    """In a class run's process: load the source files of ``sys.path``'s other directories
    through the cache in ``directory``."""
    _CachedSource.directory = directory
    hook = FileFinder.path_hook(
        (ExtensionFileLoader, EXTENSION_SUFFIXES),
        (_CachedSource, SOURCE_SUFFIXES),
        (SourcelessFileLoader, BYTECODE_SUFFIXES),
    )
    for entry in sys.path:
        where = entry or os.getcwd()
        if os.path.isdir(where) and not _own(where):
            sys.path_importer_cache[entry] = hook(entry)
