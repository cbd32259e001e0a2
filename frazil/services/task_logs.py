"""An attempt's logs (stdout, stderr, the pilot's own, a module's): one row each in the
database, and a file under the server's log directory (``frazil.store.log_files``) for any
that outgrows its row.

A pilot appends chunks as its logs grow (with its heartbeats, or a multi-task pilot's
exchanges) and the rest at the end; each chunk names the byte offset it starts at, so a chunk
sent again changes nothing and a gap is refused, naming the offset expected. A log of at
most ``LOG_TAIL`` bytes of text (UTF-8 without NUL: it reads back byte for byte) lives whole
in its row, the common case, and costs no file; a longer one, or one with other bytes, lives
whole in its file, and its row keeps its size, its file (relative to the directory) and its
last ``LOG_TAIL`` bytes, which the web and clients of earlier releases read. A pilot of
an earlier release sends a log's tail whole: it replaces the log. Names compare exactly.

``purge`` removes the logs of attempts that ended before a time, files and rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from frazil.errors import BadRequest, LogGap, NotFound, Rejected, TooLarge
from frazil.model.spec import TASK_NAME
from frazil.model.states import ACTIVE_TASK_STATES, TaskPhase
from frazil.services import attempts
from frazil.services.attempts import Checked, authenticate
from frazil.store.db import Database
from frazil.store.log_files import LogFiles
from frazil.store.prepared import prepared
from frazil.store.schema import task, task_attempt, task_log
from frazil.wire import LogAck, LogChunk, LogPart

#: The most a log's row holds, in bytes of UTF-8 (what a MariaDB TEXT column holds): a log of
#: at most this many bytes of text lives whole in its row; the row of a longer one keeps its
#: last this many bytes.
LOG_TAIL = 64 * 1024 - 1


def _check_name(name: str) -> None:
    if not TASK_NAME.match(name):  # shown to people and kept as a file name: plain
        raise Rejected(f"a log name is 1-100 letters, digits, '_', '.' or '-', got {name!r}")


def _clean(text: str) -> str:
    return text.replace("\0", "\ufffd")  # program output may hold NULs; PostgreSQL not


# -- appending ------------------------------------------------------------------------------


def append_log(
    db: Database, files: LogFiles, task_id: int, attempt: int, passkey: str, chunk: LogChunk,
    *, now: float,
) -> LogAck:  # fmt: skip
    """Append one chunk to a log of the attempt: ``LogGap`` (naming the offset expected) if
    it starts past the log's end, ``TooLarge`` past the cap; a chunk already held is taken."""

    def run(conn: Connection) -> LogAck:
        checked = authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
        return append_logs_in(conn, files, checked, [chunk], now=now, strict=True)[0]

    return db.transaction(run)


def heartbeat(
    db: Database, files: LogFiles | None, task_id: int, attempt: int, passkey: str, *,
    now: float, phase: TaskPhase | None, chunks: Sequence[LogChunk],
) -> list[LogAck]:  # fmt: skip
    """A single-task pilot's heartbeat and the chunks of its logs that came with it."""

    def run(conn: Connection) -> list[LogAck]:
        checked = attempts.heartbeat_in(conn, task_id, attempt, passkey, now=now, phase=phase)
        return append_logs_in(conn, files, checked, chunks, now=now)

    return db.transaction(run)


def append_logs_in(
    conn: Connection, files: LogFiles | None, checked: Checked, chunks: Sequence[LogChunk], *,
    now: float, strict: bool = False,
) -> list[LogAck]:  # fmt: skip
    """Append chunks to the logs of an authenticated attempt, within a transaction; one
    acknowledgement each. ``strict``: a chunk that cannot be taken raises; else its
    acknowledgement says why (a heartbeat or an exchange must not fail for a log)."""
    row, a = checked
    acks = []
    if files is None:
        if strict:
            raise Rejected("this server keeps no log files")
        for chunk in chunks:
            _check_name(chunk.name)
            acks.append(LogAck(row.id, a.number, chunk.name, 0, 0, "the server keeps no logs"))
        return acks
    for chunk in chunks:
        _check_name(chunk.name)
    held = _held(conn, a.id, [c.name for c in chunks]) if chunks else {}
    logs = dict(held)
    for chunk in chunks:
        what = f"log {chunk.name!r} of task {row.id} attempt {a.number}"
        try:
            data = chunk.payload()
            log = _append(files, logs.get(chunk.name), row, a.number, chunk, data, what)
        except (LogGap, TooLarge, ValueError) as exc:
            if strict and isinstance(exc, ValueError):
                raise BadRequest(str(exc)) from exc
            if strict:
                raise
            size = _size(files, logs.get(chunk.name))
            acks.append(LogAck(row.id, a.number, chunk.name, size, files.max_bytes, str(exc)))
            continue
        logs[chunk.name] = log
        acks.append(LogAck(row.id, a.number, chunk.name, log.size, files.max_bytes))
    _keep(conn, a.id, row.id, held, {n: v for n, v in logs.items() if held.get(n) is not v}, now)
    return acks


@dataclass(frozen=True)
class _Log:
    """A log as its row holds it: its last characters (all of it when ``path`` is None),
    its size in bytes, and its file under the log directory."""

    text: str
    size: int
    path: str | None


def _whole(data: bytes) -> _Log | None:
    """``data`` as a log its row can hold whole: at most ``LOG_TAIL`` bytes of text that
    reads back byte for byte (UTF-8, no NUL); None if it cannot."""
    if len(data) > LOG_TAIL or b"\0" in data:
        return None
    try:
        return _Log(data.decode(), len(data), None)
    except UnicodeDecodeError:
        return None


def _append(
    files: LogFiles, log: _Log | None, row: Any, number: int, chunk: LogChunk, data: bytes,
    what: str,
) -> _Log:  # fmt: skip
    """The log after appending the bytes of ``data`` it lacks (``data`` starts at byte
    ``chunk.offset``). A small log stays in its row; one that outgrows it, or holds bytes
    that are not text, moves to its file (and grows there)."""
    if log is not None and log.path is not None:
        done = files.append(log.path, chunk.offset, data, what, tail=LOG_TAIL)
        return _Log(_text(done.tail), done.size, log.path)
    had = log.text.encode() if log is not None else b""
    if log is not None and log.size != len(had):
        raise LogGap(f"{what} was kept whole by a pilot of an earlier release: it takes no more")
    if chunk.offset > len(had):
        raise LogGap(
            f"{what} holds {len(had):,} bytes: a chunk must start at the expected offset "
            f"{len(had)}, not {chunk.offset}"
        )
    new = data[len(had) - chunk.offset :]
    if not new and log is not None:
        return log
    if len(had) + len(new) > files.max_bytes:
        raise TooLarge(
            f"{what} would hold {len(had) + len(new):,} bytes, past the server's cap of "
            f"{files.max_bytes:,} bytes per log ([server] max_log_bytes)"
        )
    kept = _whole(had + new)
    if kept is not None:
        return kept
    relative = files.relative(row.dataset_id, row.id, number, chunk.name)
    done = files.append(relative, 0, had + new, what, tail=LOG_TAIL)
    return _Log(_text(done.tail), done.size, relative)


def _text(tail: bytes) -> str:
    return _tail(tail.decode(errors="replace"))


def _tail(text: str) -> str:
    """The end of ``text`` that a row holds: at most ``LOG_TAIL`` bytes of UTF-8 (a character
    cut at the start is left out)."""
    text = _clean(text)
    if len(text) * 4 <= LOG_TAIL:
        return text
    data = text.encode()
    return data[-LOG_TAIL:].decode(errors="ignore") if len(data) > LOG_TAIL else text


def _size(files: LogFiles, log: _Log | None) -> int:
    if log is None:
        return 0
    return files.size(log.path) if log.path is not None else log.size


def _held(conn: Connection, attempt_id: int, names: Sequence[str]) -> dict[str, _Log]:
    """The attempt's logs of these names that have rows (locked until the transaction ends,
    where the database can: two appends to one log take turns)."""
    stmt = prepared(
        "held_logs",
        lambda: (
            select(task_log.c.name, task_log.c.text, task_log.c.size, task_log.c.path)
            .where(
                task_log.c.attempt_id == bindparam("p_attempt"),
                task_log.c.name.in_(bindparam("p_names", expanding=True)),
            )
            .with_for_update()
        ),
    )
    rows = conn.execute(stmt, {"p_attempt": attempt_id, "p_names": sorted(set(names))})
    return {r.name: _Log(r.text, r.size, r.path) for r in rows}


def _keep(
    conn: Connection, attempt_id: int, task_id: int, held: Mapping[str, _Log],
    logs: Mapping[str, _Log], now: float,
) -> None:  # fmt: skip
    """Write the rows of the attempt's logs ``logs`` (``held``: those that have rows): one
    statement for the new ones and one for the others, whatever their number."""
    rows = [
        {"p_attempt": attempt_id, "p_task": task_id, "p_name": name, "p_text": log.text,
         "p_size": log.size, "p_path": log.path, "p_now": now}
        for name, log in logs.items()
    ]  # fmt: skip
    replace, add = prepared("store_log", _log_stmts)
    if replaced := [r for r in rows if r["p_name"] in held]:
        conn.execute(replace, replaced)
    if added := [r for r in rows if r["p_name"] not in held]:
        conn.execute(add, added)


# -- whole logs (pilots of earlier releases) ------------------------------------------------


def store_log(
    db: Database, task_id: int, attempt: int, passkey: str, *, name: str, text: str, now: float,
    files: LogFiles | None = None,
) -> None:  # fmt: skip
    """Keep a log of the attempt whole (it replaces what the log held)."""
    db.transaction(
        lambda conn: store_logs_in(
            conn, task_id, attempt, passkey, {name: text}, now=now, files=files
        )
    )


def store_logs_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, logs: Mapping[str, str], *,
    now: float, checked: Checked | None = None, files: LogFiles | None = None,
) -> None:  # fmt: skip
    """Store (or replace) the attempt's logs ``{name: text}`` within a transaction: in its
    row when small, else in its file (``files``; none: the row keeps the tail)."""
    for name in logs:
        _check_name(name)
    if not logs:
        return
    row, a = checked or authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
    held = _held(conn, a.id, list(logs))
    kept = {}
    for name, said in logs.items():
        data = said.encode()
        log = _whole(data)
        if log is None and files is not None:
            path = files.relative(row.dataset_id, row.id, a.number, name)
            log = _Log(_tail(said), files.replace(path, data), path)
        elif log is None:
            log = _Log(_tail(said), len(data), None)
        elif files is not None and (old := held.get(name)) is not None and old.path:
            files.remove(old.path)  # now small: its row holds it whole
        kept[name] = log
    _keep(conn, a.id, row.id, held, kept, now)


def _log_stmts() -> tuple[Any, Any]:
    values: dict[str, Any] = {
        "text": bindparam("p_text"), "size": bindparam("p_size"), "path": bindparam("p_path"),
        "created_at": bindparam("p_now"),
    }  # fmt: skip
    replace = (
        update(task_log)
        .where(
            task_log.c.attempt_id == bindparam("p_attempt"), task_log.c.name == bindparam("p_name")
        )
        .values(**values)
    )
    add = insert(task_log).values(
        attempt_id=bindparam("p_attempt"), task_id=bindparam("p_task"), name=bindparam("p_name"),
        **values,
    )  # fmt: skip
    return replace, add


# -- reading --------------------------------------------------------------------------------


def read_log(
    db: Database, files: LogFiles | None, task_id: int, name: str, *, attempt: int | None = None,
    start: int = 0, end: int | None = None,
) -> LogPart:  # fmt: skip
    """Bytes ``start`` up to ``end`` (None: all) of a log of the task's attempt ``attempt``
    (None: its newest). An attempt that has not sent this log yet has an empty one."""
    _check_name(name)
    with db.read() as conn:
        if conn.execute(select(task.c.id).where(task.c.id == task_id)).first() is None:
            raise NotFound(f"no task {task_id}")
        number = attempt
        if number is None:
            number = conn.execute(
                select(func.max(task_attempt.c.number)).where(task_attempt.c.task_id == task_id)
            ).scalar()
            if number is None:
                raise NotFound(f"task {task_id} has no attempt yet")
        a = conn.execute(
            select(task_attempt.c.id).where(
                task_attempt.c.task_id == task_id, task_attempt.c.number == number
            )
        ).first()
        if a is None:
            raise NotFound(f"task {task_id} has no attempt {number}")
        kept = conn.execute(
            select(task_log.c.text, task_log.c.path).where(
                task_log.c.attempt_id == a.id, task_log.c.name == name
            )
        ).first()
    if kept is not None and kept.path is not None and files is not None:
        total = files.size(kept.path)
        data = files.read(kept.path, start, end) if start < total else b""
    else:
        whole = kept.text.encode() if kept is not None else b""
        total = len(whole)
        data = whole[start:end]
    return LogPart(number, name, start, total, data)


# -- purging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Purged:
    """What a purge removed (or would remove): attempts, logs and their bytes."""

    attempts: int
    logs: int
    bytes: int


def purge(db: Database, files: LogFiles, before: float, *, dry_run: bool = False) -> Purged:
    """Remove the logs (files and rows) of attempts that ended before ``before``."""
    stmt = (
        select(task_log.c.id, task_log.c.size, task_log.c.path, task_attempt.c.id.label("aid"),
               task_attempt.c.number, task.c.id.label("task_id"), task.c.dataset_id)
        .join(task_attempt, task_attempt.c.id == task_log.c.attempt_id)
        .join(task, task.c.id == task_attempt.c.task_id)
        .where(task_attempt.c.ended_at.is_not(None), task_attempt.c.ended_at < before)
    )  # fmt: skip
    with db.read() as conn:
        rows = conn.execute(stmt).all()
    total = sum(files.size(r.path) if r.path else r.size for r in rows)
    attempts = {(r.dataset_id, r.task_id, r.number) for r in rows}
    if not dry_run:
        ids = [r.id for r in rows]
        for i in range(0, len(ids), 500):
            batch = ids[i : i + 500]
            db.transaction(lambda conn, b=batch: conn.execute(  # type: ignore[misc]
                delete(task_log).where(task_log.c.id.in_(b))
            ))  # fmt: skip
        for dataset_id, task_id, number in attempts:
            files.remove_attempt(dataset_id, task_id, number)
    return Purged(len(attempts), len(rows), total)
