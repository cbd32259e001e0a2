"""The tails of an attempt's logs (stdout, stderr, the pilot's own, a module's), kept in the
database for people to read: a pilot sends them with its report, or one at a time.

A log sent again for the same attempt replaces the earlier one; names compare exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from frazil.errors import Rejected
from frazil.model.spec import TASK_NAME
from frazil.model.states import ACTIVE_TASK_STATES
from frazil.services.attempts import Checked, authenticate
from frazil.store.db import Database
from frazil.store.prepared import prepared
from frazil.store.schema import task_log

#: Logs keep their last this many characters.
MAX_LOG = 64 * 1024


def store_log(
    db: Database, task_id: int, attempt: int, passkey: str, *, name: str, text: str, now: float
) -> None:
    """Keep the tail of a log of the attempt (stdout, stderr, the pilot's own, a module's)."""
    db.transaction(
        lambda conn: store_logs_in(conn, task_id, attempt, passkey, {name: text}, now=now)
    )


def store_logs_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, logs: Mapping[str, str], *,
    now: float, checked: Checked | None = None,
) -> None:  # fmt: skip
    """Store (or replace) the attempt's logs ``{name: text}`` within a transaction: one read
    of the names it has, then one statement for the new ones and one for the replaced."""
    for name in logs:
        if not TASK_NAME.match(name):  # shown to people and kept as a file name: plain
            raise Rejected(f"a log name is 1-100 letters, digits, '_', '.' or '-', got {name!r}")
    if not logs:
        return
    row, a = checked or authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
    names = prepared(
        "log_names",
        lambda: select(task_log.c.name).where(
            task_log.c.attempt_id == bindparam("p_attempt"),
            task_log.c.name.in_(bindparam("p_names", expanding=True)),
        ),
    )
    have = set(conn.execute(names, {"p_attempt": a.id, "p_names": list(logs)}).scalars())
    rows = []
    for name, said in logs.items():
        text = said.replace("\0", "\ufffd")  # program output may hold NULs; PostgreSQL not
        rows.append({
            "p_attempt": a.id, "p_task": row.id, "p_name": name, "p_text": text[-MAX_LOG:],
            "p_size": len(text.encode()), "p_now": now,
        })  # fmt: skip
    replace, add = prepared("store_log", _log_stmts)
    if replaced := [r for r in rows if r["p_name"] in have]:
        conn.execute(replace, replaced)
    if added := [r for r in rows if r["p_name"] not in have]:
        conn.execute(add, added)


def _log_stmts() -> tuple[Any, Any]:
    values: dict[str, Any] = {
        "text": bindparam("p_text"), "size": bindparam("p_size"), "created_at": bindparam("p_now")
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
