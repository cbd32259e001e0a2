"""Files a config names by a path relative to its own file, and their pinned replacements.

A submitter's machine holds what such a path names (a module's script, a class's code, a
small input); a worker node does not. ``references`` lists those paths as job 0 resolves
them with the config's own values (site values left to the site), so the command line can
upload each file and send ``{path: sha256}`` with the config; ``pin`` puts the uploaded
file's reference (``frazil.wire.blob_ref``) in place of each such path in a resolved task,
and the checksum on an input, so that a pilot anywhere fetches exactly the file submitted.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from frazil.errors import ExpressionError, Problem
from frazil.model.expressions import Evaluator, to_text
from frazil.model.resolve import JobInfo, Resolver
from frazil.model.spec import Data, DatasetConfig, Movement
from frazil.model.urls import url_scheme
from frazil.wire import Module, TaskSpec, Tray, blob_ref

#: Suffixes that make a module's ``src`` a file rather than a program on the site's PATH.
FILE_SUFFIXES = (".py", ".sh", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")


class Kind(StrEnum):
    """What a referenced file is to the task."""

    SCRIPT = "src"  #: a module's program (``src``)
    CODE = "url"  #: a class module's code, a .py file or a tarball (``url``)
    INPUT = "data"  #: an input file (a ``data`` entry's ``remote``, movement ``input``)


@dataclass(frozen=True)
class Reference:
    """A local path in a config: where (``tasks[0].trays[0].modules[0].src``), the path
    (normalized, relative to the config's directory), and whether the config wrote it as it
    is (``literal``; otherwise an expression gave it, which a site may give otherwise)."""

    where: str
    path: str
    kind: Kind
    literal: bool

    @property
    def surely_a_file(self) -> bool:
        """Whether a missing file is an error: a module's script or code that the config
        names as it is, unless the script may be a program on the site's PATH (``echo``: no
        directory, no file suffix). A missing input is a path in the site's data."""
        if not self.literal or self.kind is Kind.INPUT:
            return False
        if self.kind is Kind.SCRIPT:
            return "/" in self.path or self.path.endswith(FILE_SUFFIXES)
        return True


def local_path(text: str) -> str | None:
    """``text`` normalized if it is a relative local path (no scheme, not absolute, no
    expression left in it), else None. It may climb (``../x``): see ``climbs``."""
    if not text or "$" in text or url_scheme(text) != "" or text.startswith("/"):
        return None
    normal = posixpath.normpath(text)
    return None if normal in (".", "") else normal


def references(config: DatasetConfig, info: JobInfo | None = None) -> list[Reference]:
    """The local paths job 0 of ``config`` names (module scripts and code, inputs), each
    once, in config order. Values only a site knows stay unresolved and are left out."""
    site_free = replace(info or JobInfo(), system={}, environ={}, defer_site_values=True)
    resolver = Resolver(config, site_free, [], every_iteration=False)
    seen: dict[str, Reference] = {}
    for ref in _walk(config, resolver):
        seen.setdefault(ref.path, ref)
    return list(seen.values())


def _walk(config: DatasetConfig, resolver: Resolver) -> Iterator[Reference]:
    yield from _inputs(resolver, resolver.dataset, config.steering.data, "steering.data")
    for t, task in enumerate(config.tasks):
        yield from _inputs(resolver, resolver.task_evaluator(t), task.data, f"tasks[{t}].data")
        for r, tray in enumerate(task.trays):
            rpath = f"tasks[{t}].trays[{r}]"
            yield from _inputs(resolver, resolver.tray_evaluator(t, r, 0), tray.data, rpath)
            for m, mod in enumerate(tray.modules):
                mpath = f"{rpath}.modules[{m}]"
                ev = resolver.module_evaluator(t, r, m, 0)
                kind, raw = (Kind.CODE, mod.url) if mod.class_ else (Kind.SCRIPT, mod.src)
                ref = _reference(resolver, ev, raw, f"{mpath}.{kind.value}", kind)
                if ref is not None:
                    yield ref
                yield from _inputs(resolver, ev, mod.data, f"{mpath}.data")


def _inputs(
    resolver: Resolver, ev: Evaluator, entries: list[Data], path: str
) -> Iterator[Reference]:
    for k, d in enumerate(entries):
        if d.movement is not Movement.INPUT or d.transfer is False:
            continue
        ref = _reference(resolver, ev, d.remote, f"{path}[{k}].remote", Kind.INPUT)
        if ref is not None:
            yield ref


def _reference(
    resolver: Resolver, ev: Evaluator, raw: str, where: str, kind: Kind
) -> Reference | None:
    try:
        value = to_text(resolver.value(ev, raw, where))
    except ExpressionError:
        return None
    path = local_path(value)
    return None if path is None else Reference(where, path, kind, "$" not in raw)


def climbs_out(ref: Reference) -> Problem | None:
    """A problem if ``ref`` leaves the config's directory (what is uploaded is what the
    config's directory holds; an absolute path is a site's and stays as it is)."""
    if ref.path == ".." or ref.path.startswith("../"):
        return Problem(ref.where, f"{ref.path!r} climbs out of the config's directory")
    return None


def pin(spec: TaskSpec, uploads: Mapping[str, str]) -> TaskSpec:
    """``spec`` with every local path that ``uploads`` ({path: sha256}) holds replaced by
    the uploaded file's reference; an input also gets its checksum."""
    if not uploads:
        return spec

    def ref(text: str) -> str:
        path = local_path(text)
        sha = uploads.get(path) if path is not None else None
        return text if sha is None or path is None else blob_ref(sha, posixpath.basename(path))

    def module(m: Module) -> Module:
        return replace(m, url=ref(m.url)) if m.class_ else replace(m, src=ref(m.src))

    trays = tuple(
        Tray(t.name, t.iteration, t.env, tuple(module(m) for m in t.modules)) for t in spec.trays
    )
    data = []
    for d in spec.data:
        path = local_path(d.remote)
        sha = uploads.get(path) if path is not None else None
        if sha is None or path is None or d.movement != Movement.INPUT.value:
            data.append(d)
        else:
            data.append(
                replace(d, remote=blob_ref(sha, posixpath.basename(path)), checksum=f"sha256:{sha}")
            )
    return replace(spec, trays=trays, data=tuple(data))
