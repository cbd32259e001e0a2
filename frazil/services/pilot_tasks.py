"""Handing tasks to a multi-task pilot: what fits in what it has left, started at once.

A task handed to a pilot starts at once (``queued`` → ``processing``, the one bulk write of
``task.status`` here, listed in ``transitions``): the pilot is already running on a worker
node. Each comes with its attempt, passkey and resolved spec, in the wire format's
``Handed`` shape. A repeated exchange (the same request id) gets what the first one handed
out, with the same passkeys and specs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, select, update

from frazil.errors import FrazilError
from frazil.model.records import Claim, SiteResources
from frazil.model.states import AttemptOutcome, TaskStatus, check_task_transition
from frazil.services import attempts, specs
from frazil.services.claim import Budget, claim_in, repeated
from frazil.services.keys import request_passkey
from frazil.services.transitions import load_task
from frazil.store.prepared import prepared
from frazil.store.schema import task, task_attempt
from frazil.wire import AttemptKey, handed_json


def again(conn: Connection, p: Any, request_id: str) -> list[dict[str, Any]] | None:
    """What an earlier exchange with this request id handed the pilot, as it answered then."""
    rows = repeated(conn, request_id, site=p.site, pilot_id=p.id, status=TaskStatus.PROCESSING)
    if rows is None:
        return None
    return [
        handed_json(
            AttemptKey(r.task_id, r.number, request_passkey(request_id, r.task_id, r.number)),
            json.loads(r.spec),
        )
        for r in rows
        if r.spec is not None
    ]


def _held_stmt() -> Any:
    current = and_(
        task_attempt.c.task_id == task.c.id,
        task_attempt.c.number == task.c.attempts,
    )
    return (
        select(
            func.coalesce(func.sum(task.c.cpu), 0).label("cpu"),
            func.coalesce(func.sum(task.c.gpu), 0).label("gpu"),
            func.coalesce(func.sum(task.c.memory), 0.0).label("memory"),
            func.coalesce(func.sum(task.c.disk), 0.0).label("disk"),
        )
        .select_from(task_attempt.join(task, current))
        .where(
            task_attempt.c.pilot_id == bindparam("p_pilot"),
            task_attempt.c.outcome == AttemptOutcome.OPEN.value,
        )
    )


def _held(conn: Connection, pilot_id: int) -> dict[str, float]:
    """What the pilot's open attempts hold."""
    row = conn.execute(prepared("held", _held_stmt), {"p_pilot": pilot_id}).one()
    return {k: float(getattr(row, k)) for k in ("cpu", "gpu", "memory", "disk")}


def hand_out(
    conn: Connection, p: Any, limit: int, time_left: float | None, now: float, host: str,
    skip_locked: bool, request_id: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    if not limit:
        return []
    held = _held(conn, p.id)
    cpu, gpu = int(p.cpu - held["cpu"]), int(p.gpu - held["gpu"])
    memory, disk = p.memory - held["memory"], p.disk - held["disk"]
    hours = min(p.time, time_left) if time_left is not None else p.time
    if cpu < 0 or gpu < 0 or memory <= 0 or disk <= 0 or hours <= 0:
        return []
    left = SiteResources(
        name=p.site, cpu=cpu, gpu=gpu, memory=memory, disk=disk, time=hours, os=p.os,
        attributes=json.loads(p.attributes) if p.attributes else {},
    )  # fmt: skip
    claims = claim_in(
        conn, left, limit, now, skip_locked, budget=Budget(left), pilot_id=p.id,
        request_id=request_id,
    )  # fmt: skip
    return _start(conn, claims, now, host, p.site)


def _start_stmts() -> tuple[Any, Any, Any]:
    ids: Any = bindparam("p_ids", expanding=True)
    start_tasks = (
        update(task)
        .where(task.c.id.in_(ids), task.c.status == TaskStatus.QUEUED.value)
        .values(
            status=TaskStatus.PROCESSING.value,
            status_changed=bindparam("p_now"),
            heartbeat_at=bindparam("p_now"),
        )
    )
    read_attempts = select(
        task_attempt.c.id, task_attempt.c.task_id, task_attempt.c.config_version
    ).where(task_attempt.c.task_id.in_(ids), task_attempt.c.outcome == AttemptOutcome.OPEN.value)
    store_specs = (
        update(task_attempt)
        .where(task_attempt.c.id == bindparam("p_attempt"))
        .values(spec=bindparam("p_spec"), started_at=bindparam("p_now"), host=bindparam("p_host"))
    )
    return start_tasks, read_attempts, store_specs


def _start(
    conn: Connection, claims: Sequence[Claim], now: float, host: str, site_name: str
) -> list[dict[str, Any]]:
    """Start the claimed tasks at once (``queued`` → ``processing``), each with its spec.

    A task whose spec cannot be resolved is not handed out: it fails alone, with the located
    error (at once when no site could resolve it), and the others start.
    """
    if not claims:
        return []
    check_task_transition(TaskStatus.QUEUED, TaskStatus.PROCESSING)
    start_tasks, read_attempts, store_specs = prepared("start", _start_stmts)
    rows = {
        r.task_id: r for r in conn.execute(read_attempts, {"p_ids": [c.task_id for c in claims]})
    }
    targets = [
        specs.Target(c.task_id, c.attempt, c.dataset_id, c.job_index, c.task_index,
                     rows[c.task_id].config_version)
        for c in claims
    ]  # fmt: skip
    texts = specs.resolve_texts(conn, targets, specs.site_system(conn, site_name))
    good: list[tuple[Claim, str]] = []
    for c, text in zip(claims, texts, strict=True):
        if isinstance(text, str):
            good.append((c, text))
            continue
        row = load_task(conn, c.task_id)
        assert row is not None  # claimed in this transaction
        attempts.fail_unresolvable(conn, row, rows[c.task_id].id, text, now=now)
    if not good:
        return []
    ids = [c.task_id for c, _ in good]
    started = conn.execute(start_tasks, {"p_ids": ids, "p_now": now}).rowcount
    if started != len(ids):
        raise FrazilError(f"started {started} of {len(ids)} tasks just handed out")
    conn.execute(
        store_specs,
        [
            {"p_attempt": rows[c.task_id].id, "p_spec": text, "p_now": now,
             "p_host": host[:255] or None}
            for c, text in good
        ],
    )  # fmt: skip
    return [
        handed_json(AttemptKey(c.task_id, c.attempt, c.passkey), json.loads(text))
        for c, text in good
    ]
