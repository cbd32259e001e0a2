"""The temporary-file collector: deletes the job-temporary files of complete jobs and the
dataset-temporary files of complete datasets (IceProd's soapdh), and nothing else.

A file row says what a pilot reported, and a task's code can report anything (it can read
its passkey), so a row alone never licenses a deletion. A file is deleted only when

- the attempt's resolved spec (stored with the attempt when it was handed out) declares it
  as a temporary output of that type, at exactly that URL;
- it is a local file (``file://`` or an absolute path) with no ``..`` in its path, under one
  of the storage roots the server's settings name (``[server] storage_roots``);
- no directory on the way down from the root is a symbolic link (each is opened with
  ``O_NOFOLLOW`` from the root's descriptor, so a link swapped in after a check cannot
  redirect the deletion), and it is not the server's own database.

Anything else is refused: the row records why (so it is considered once), the task's audit
trail gets an event, and the log a warning with the path quoted.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Connection, and_, bindparam, or_, select, update

from frazil.model.states import DatasetStatus, JobStatus
from frazil.services.transitions import record_event
from frazil.store.db import Database
from frazil.store.schema import dataset, file, job, task, task_attempt

log = logging.getLogger(__name__)

#: The file types the collector deletes, each once what it belongs to is complete.
TEMPORARY = ("job_temp", "dataset_temp")


@dataclass(frozen=True)
class Collected:
    """What one round of the collector did."""

    deleted: int
    refused: int


@dataclass(frozen=True)
class _Candidate:
    id: int
    url: str
    type: str
    task_id: int | None
    dataset_id: int
    attempt_id: int | None


def declared_temporary(spec: Mapping[str, Any]) -> frozenset[tuple[str, str]]:
    """The (URL, type) of every temporary output a resolved task spec declares."""
    return frozenset(
        (str(d.get("remote", "")), str(d.get("type", "")))
        for d in spec.get("data", ())
        if d.get("movement") in ("output", "both") and d.get("type") in TEMPORARY
    )


def local_path(url: str) -> PurePosixPath | None:
    """The path of a ``file://`` URL on this host or of an absolute path; else ``None``."""
    try:
        parts = urlsplit(url)
    except ValueError:  # an invalid "[host]": not a local path either
        return None
    if parts.scheme == "file" and parts.netloc in ("", "localhost"):
        return PurePosixPath(unquote(parts.path))
    if parts.scheme == "" and url.startswith("/"):
        return PurePosixPath(url)
    return None


def placement(path: PurePosixPath, roots: Sequence[Path]) -> tuple[Path, PurePosixPath] | str:
    """The storage root ``path`` lies under and the path below it, or why it may not be
    touched (a refusal)."""
    if ".." in path.parts or "\0" in str(path):
        return "its path climbs with '..' or holds a NUL"
    for root in roots:
        if path.is_relative_to(root) and path != PurePosixPath(root):
            return root, path.relative_to(root)
    return "it is outside every storage root ([server] storage_roots)"


def where_deletable(
    url: str, type_: str, declared: Collection[tuple[str, str]], roots: Sequence[Path]
) -> tuple[Path, PurePosixPath] | str:
    """Where the file a pilot reported may be deleted, or why it may not (pure)."""
    if (url, type_) not in declared:
        return f"the task's resolved spec does not declare it as a {type_} output"
    path = local_path(url)
    if path is None:
        return "it is not a local file (only file:// URLs and absolute paths are deleted)"
    return placement(path, roots)


def unlink_below(root: Path, below: PurePosixPath, protected: Collection[tuple[int, int]]) -> str:
    """Delete ``root/below`` without following a symbolic link on the way; returns why not
    ("" when it is gone). ``protected`` holds (device, inode) pairs never to delete."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        return f"the storage root cannot be opened: {exc.strerror}"
    try:
        for part in below.parts[:-1]:
            try:
                inner = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                return ""  # nothing left to delete
            except OSError as exc:  # ELOOP, ENOTDIR: a link or a file on the way
                return f"{part!r} on its path is not a plain directory ({exc.strerror})"
            os.close(fd)
            fd = inner
        name = below.parts[-1]
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            return ""
        if stat.S_ISDIR(st.st_mode):
            return "it is a directory"
        if (st.st_dev, st.st_ino) in protected:
            return "it is the server's own database"
        try:
            os.unlink(name, dir_fd=fd)
        except FileNotFoundError:
            return ""
        except OSError as exc:
            return f"it cannot be deleted: {exc.strerror}"
        return ""
    finally:
        os.close(fd)


def _protected(db: Database) -> frozenset[tuple[int, int]]:
    found = set()
    for path in db.sqlite_files():
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def _candidates(conn: Connection, limit: int) -> list[_Candidate]:
    rows = conn.execute(
        select(
            file.c.id,
            file.c.url,
            file.c.type,
            file.c.task_id,
            file.c.dataset_id,
            file.c.attempt_id,
        )
        .select_from(
            file.join(task, task.c.id == file.c.task_id)
            .join(
                job,
                and_(job.c.dataset_id == task.c.dataset_id, job.c.job_index == task.c.job_index),
            )
            .join(dataset, dataset.c.id == file.c.dataset_id)
        )
        .where(
            file.c.deleted_at.is_(None),
            file.c.refused.is_(None),
            file.c.movement != "input",
            or_(
                and_(file.c.type == "job_temp", job.c.status == JobStatus.COMPLETE.value),
                and_(
                    file.c.type == "dataset_temp",
                    dataset.c.status == DatasetStatus.COMPLETE.value,
                ),
            ),
        )
        .order_by(file.c.id)
        .limit(limit)
    ).all()
    return [_Candidate(*r) for r in rows]


def _declared(
    conn: Connection, attempt_ids: Iterable[int]
) -> dict[int, frozenset[tuple[str, str]]]:
    out = {}
    for r in conn.execute(
        select(task_attempt.c.id, task_attempt.c.spec).where(
            task_attempt.c.id.in_(sorted(set(attempt_ids)))
        )
    ):
        try:
            spec = json.loads(r.spec) if r.spec else {}
        except ValueError:
            spec = {}
        out[r.id] = declared_temporary(spec if isinstance(spec, dict) else {})
    return out


def collect_temporary(
    db: Database, now: float, roots: Sequence[Path], *, limit: int = 1000
) -> Collected:
    """Delete the temporary files whose job (or dataset) is complete, where allowed; record
    the others as refused. ``roots`` are the storage roots, absolute and resolved."""
    with db.read() as conn:
        rows = _candidates(conn, limit)
        declared = _declared(conn, [r.attempt_id for r in rows if r.attempt_id is not None])
    protected = _protected(db)
    deleted: list[int] = []
    refused: list[tuple[_Candidate, str]] = []
    for r in rows:
        where = where_deletable(r.url, r.type, declared.get(r.attempt_id or 0, frozenset()), roots)
        why = unlink_below(*where, protected) if isinstance(where, tuple) else where
        if why:
            refused.append((r, why))
            log.warning("refused to delete temporary file %r of task %s: %s", r.url, r.task_id, why)
        else:
            deleted.append(r.id)

    def mark(conn: Connection) -> None:
        if deleted:
            conn.execute(update(file).where(file.c.id.in_(deleted)).values(deleted_at=now))
        if refused:
            conn.execute(
                update(file)
                .where(file.c.id == bindparam("p_id"))
                .values(refused=bindparam("p_why")),
                [{"p_id": r.id, "p_why": why} for r, why in refused],
            )
        for r, why in refused:
            record_event(
                conn, now, "daemon:collector", "task", str(r.task_id), "refused_delete",
                dataset_id=r.dataset_id, reason=f"{r.url!r}: {why}",
            )  # fmt: skip

    if deleted or refused:
        db.transaction(mark)
    if deleted:
        log.info("deleted %d temporary file(s)", len(deleted))
    return Collected(len(deleted), len(refused))
