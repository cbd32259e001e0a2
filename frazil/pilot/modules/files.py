"""Built-in modules that move files around: copying, and making and unpacking tarballs.

Unpacking treats the tarball as untrusted (it may come from anywhere a config points): every
member is checked before anything is written, and extraction runs under tarfile's ``data``
filter, which re-checks each path against symlinks created earlier in the same archive.
"""

from __future__ import annotations

import logging
import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable, Mapping
from typing import ClassVar

from frazil.pilot.fsutil import create_temp, discard
from frazil.pilot.modules.base import REQUIRED, Module, ModuleError, Param

log = logging.getLogger(__name__)

#: Tarball suffix → tarfile write mode.
TAR_MODES = {".tar.gz": "w:gz", ".tgz": "w:gz", ".tar.bz2": "w:bz2", ".tar.xz": "w:xz", ".tar": "w"}


class CopyFiles(Module):
    """Copy files and directories (recursively) into a destination directory."""

    parameters: ClassVar[Mapping[str, Param]] = {
        "files": Param(REQUIRED, "files or directories to copy"),
        "dest": Param(REQUIRED, "directory to copy them into (created if needed)"),
    }

    def check(self) -> None:
        """Refuse parameters of the wrong type before anything runs."""
        self.param_strs("files")
        self.param_str("dest")

    def run(self, stats: dict[str, float]) -> None:
        """Copy every entry of ``files``; records ``files_copied`` and ``bytes_copied``."""
        dest = self.path(self.param_str("dest"))
        copied = [0, 0]

        def copy_one(src: str, dst: str) -> str:
            result = shutil.copy2(src, dst)
            copied[0] += 1
            copied[1] += os.path.getsize(dst)
            return str(result)

        try:
            dest.mkdir(parents=True, exist_ok=True)
            for entry in self.param_strs("files"):
                source = self.path(entry)
                target = dest / source.name
                if source.is_dir():
                    shutil.copytree(source, target, copy_function=copy_one, dirs_exist_ok=True)
                elif source.exists():
                    copy_one(str(source), str(target))
                else:
                    raise ModuleError(f"module {self.name}: no such file or directory: {source}")
        except (OSError, shutil.Error) as exc:
            raise ModuleError(f"module {self.name}: copying into {dest} failed: {exc}") from exc
        stats["files_copied"] = stats.get("files_copied", 0.0) + copied[0]
        stats["bytes_copied"] = stats.get("bytes_copied", 0.0) + copied[1]


class MakeTarball(Module):
    """Pack files and directories into one tarball, compressed as its suffix says."""

    parameters: ClassVar[Mapping[str, Param]] = {
        "paths": Param(REQUIRED, "files or directories to pack, each under its own name"),
        "output": Param(REQUIRED, "the tarball: .tar.gz, .tgz, .tar.bz2, .tar.xz or .tar"),
    }

    def check(self) -> None:
        """Refuse parameters of the wrong type before anything runs."""
        self.param_strs("paths")
        self.param_str("output")

    def run(self, stats: dict[str, float]) -> None:
        """Write the tarball atomically; records ``tarball_bytes``."""
        output = self.path(self.param_str("output"))
        mode = next((m for s, m in TAR_MODES.items() if output.name.endswith(s)), None)
        if mode is None:
            known = ", ".join(TAR_MODES)
            raise ModuleError(f"module {self.name}: {output.name} should end in one of {known}")
        try:
            output.parent.mkdir(parents=True, exist_ok=True)
            fd, temp = create_temp(output.parent, output.name)
        except OSError as exc:
            raise ModuleError(f"module {self.name}: cannot write {output}: {exc}") from exc

        def skip_self(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
            # Packing the tarball's own directory must not pack the half-written tarball.
            return None if posixpath.basename(info.name) == temp.name else info

        # tarfile.open's stubs want the mode as a literal; it is one of TAR_MODES' values.
        open_tar: Callable[..., tarfile.TarFile] = tarfile.open
        try:
            with os.fdopen(fd, "wb") as stream, open_tar(fileobj=stream, mode=mode) as tar:
                for entry in self.param_strs("paths"):
                    source = self.path(entry)
                    if not source.exists():
                        raise ModuleError(f"module {self.name}: no such file: {source}")
                    tar.add(source, arcname=source.resolve().name, filter=skip_self)
            os.replace(temp, output)
        except (OSError, tarfile.TarError) as exc:
            discard(temp)
            raise ModuleError(f"module {self.name}: cannot write {output}: {exc}") from exc
        except BaseException:
            discard(temp)
            raise
        stats["tarball_bytes"] = float(output.stat().st_size)


class UnpackTarball(Module):
    """Unpack a tarball into a directory, refusing anything that would land outside it."""

    parameters: ClassVar[Mapping[str, Param]] = {
        "tarball": Param(REQUIRED, "the tarball (any compression tarfile reads)"),
        "dest": Param(".", "directory to unpack into (created if needed)"),
    }

    def check(self) -> None:
        """Refuse parameters of the wrong type before anything runs."""
        self.param_str("tarball")
        self.param_str("dest")

    def run(self, stats: dict[str, float]) -> None:
        """Check every member, then extract; records ``files_unpacked``."""
        tarball = self.path(self.param_str("tarball"))
        dest = self.path(self.param_str("dest"))
        try:
            dest.mkdir(parents=True, exist_ok=True)
            with tarfile.open(tarball, "r:*") as tar:
                members = tar.getmembers()
                root = os.path.realpath(dest)
                for member in members:
                    problem = unsafe_member(member, root)
                    if problem:
                        raise ModuleError(f"module {self.name}: {tarball}: refusing {problem}")
                tar.extractall(root, members=members, filter="data")
        except (OSError, tarfile.TarError) as exc:  # FilterError is a TarError
            raise ModuleError(f"module {self.name}: cannot unpack {tarball}: {exc}") from exc
        files = sum(1 for m in members if m.isfile())
        stats["files_unpacked"] = stats.get("files_unpacked", 0.0) + files
        log.debug("unpacked %d files from %s into %s", files, tarball, dest)


def unsafe_member(member: tarfile.TarInfo, root: str) -> str | None:
    """Why ``member`` may not be extracted under the directory ``root``, or ``None``.

    Refused: absolute names, names or link targets that climb out of ``root``, and anything
    that is not a file, a directory or a link (devices, FIFOs).
    """
    name = member.name
    if name.startswith(("/", "\\")) or os.path.isabs(name):
        return f"member {name!r} with an absolute path"
    target = os.path.normpath(os.path.join(root, name))
    if not _inside(target, root):
        return f"member {name!r}, which points outside the target directory"
    if member.issym() or member.islnk():
        link = member.linkname
        if link.startswith(("/", "\\")) or os.path.isabs(link):
            return f"link {name!r} to the absolute path {link!r}"
        # Symlinks are relative to their own directory, hard links to the archive's root.
        start = os.path.dirname(target) if member.issym() else root
        if not _inside(os.path.normpath(os.path.join(start, link)), root):
            return f"link {name!r} to {link!r}, outside the target directory"
    elif not (member.isfile() or member.isdir()):
        return f"member {name!r}, a device file or FIFO"
    return None


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)
