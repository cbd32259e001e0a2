"""Task state changes, and what follows from them, inside the caller's transaction.

``change_task`` is the single-task path: a compare-and-set on the task's status and attempt
number, then the job's counters and status, then the dataset's, then (on completion) the
release of the task's children (``release_children``, idle -> waiting). Every other write of
``task.status`` is set-based, checks its change against ``TASK_TRANSITIONS`` and is listed
here:

- ``claim._hand_out``: waiting -> queued (a site's claim, a reservation's, a pilot's);
- ``pilot_tasks._start``: queued -> processing (a task handed to a multi-task pilot starts
  at once);
- ``control``: suspend, resume, reset and hard reset of a scope (the sources of each come
  from the table), followed by ``recount.recount`` of the jobs they touched.

Routine steps of a pilot (claim, processing, complete) are recorded by the attempt row;
everything else (failures, resets, timeouts, suspensions, status changes of jobs and
datasets) also writes an ``event`` row.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from frazil.model.states import (
    ACTIVE_TASK_STATES,
    AttemptOutcome,
    DatasetProgress,
    DatasetStatus,
    JobCounts,
    JobStatus,
    TaskStatus,
    check_dataset_transition,
    check_job_transition,
    check_task_transition,
    counter_deltas,
    derive_dataset_status,
    derive_job_status,
)
from frazil.store.db import locks_rows, mark_ready
from frazil.store.prepared import prepared
from frazil.store.schema import dataset, event, job, task, task_attempt, task_dependency


@dataclass(frozen=True)
class TaskRow:
    """The columns of a task that state changes look at."""

    id: int
    dataset_id: int
    job_index: int
    task_index: int
    name: str
    status: TaskStatus
    failures: int
    attempts: int
    deps_pending: int


TASK_ROW_COLUMNS = (
    task.c.id,
    task.c.dataset_id,
    task.c.job_index,
    task.c.task_index,
    task.c.name,
    task.c.status,
    task.c.failures,
    task.c.attempts,
    task.c.deps_pending,
)


def task_row(row: Any) -> TaskRow:
    """A ``TaskRow`` from a result row selected with ``TASK_ROW_COLUMNS``."""
    return TaskRow(
        id=row.id,
        dataset_id=row.dataset_id,
        job_index=row.job_index,
        task_index=row.task_index,
        name=row.name,
        status=TaskStatus(row.status),
        failures=row.failures,
        attempts=row.attempts,
        deps_pending=row.deps_pending,
    )


def _load_stmt(lock: bool) -> Any:
    stmt = select(*TASK_ROW_COLUMNS).where(task.c.id == bindparam("p_id"))
    return stmt.with_for_update() if lock else stmt


def load_task(conn: Connection, task_id: int, *, lock: bool = True) -> TaskRow | None:
    """The task with ``task_id`` (locked for update where the backend can), or None."""
    lock = lock and locks_rows(conn)
    stmt = prepared(("load_task", lock), lambda: _load_stmt(lock))
    row = conn.execute(stmt, {"p_id": task_id}).first()
    return task_row(row) if row is not None else None


def record_event(
    conn: Connection,
    now: float,
    actor: str,
    object_type: str,
    object_id: str,
    action: str,
    *,
    dataset_id: int | None = None,
    old: str | None = None,
    new: str | None = None,
    count: int = 1,
    reason: str = "",
) -> None:
    """Append one row to the audit trail."""
    conn.execute(
        prepared("record_event", lambda: insert(event)),
        {
            "time": now,
            "actor": actor,
            "dataset_id": dataset_id,
            "object_type": object_type,
            "object_id": object_id,
            "action": action,
            "old_status": old,
            "new_status": new,
            "count": count,
            "reason": reason[:10_000],
        },
    )


# -- the DAG every job of a dataset shares ---------------------------------------------------
# Read from the database each time (a few rows by primary key): a process-wide cache could
# outlive a rolled-back submission whose id SQLite then gives to another dataset.


def dependency_edges(conn: Connection, dataset_id: int) -> list[tuple[int, int]]:
    """The dataset's dependencies as (task index, depends-on index) pairs."""
    rows = conn.execute(
        select(task_dependency.c.task_index, task_dependency.c.depends_on)
        .where(task_dependency.c.dataset_id == dataset_id)
        .order_by(task_dependency.c.task_index, task_dependency.c.depends_on)
    ).all()
    return [(r.task_index, r.depends_on) for r in rows]


def children_of(conn: Connection, dataset_id: int, task_index: int) -> tuple[int, ...]:
    """Indexes of the tasks that depend on ``task_index`` (in every job of the dataset)."""
    return _linked(conn, dataset_id, task_index, children=True)


def parents_of(conn: Connection, dataset_id: int, task_index: int) -> tuple[int, ...]:
    """Indexes of the tasks that ``task_index`` depends on."""
    return _linked(conn, dataset_id, task_index, children=False)


def _linked(
    conn: Connection, dataset_id: int, task_index: int, *, children: bool
) -> tuple[int, ...]:
    known, wanted = (
        (task_dependency.c.depends_on, task_dependency.c.task_index)
        if children
        else (task_dependency.c.task_index, task_dependency.c.depends_on)
    )
    stmt = prepared(
        ("linked", children),
        lambda: select(wanted).where(
            task_dependency.c.dataset_id == bindparam("p_dataset"),
            known == bindparam("p_index"),
        ),
    )
    rows = conn.execute(stmt, {"p_dataset": dataset_id, "p_index": task_index}).all()
    return tuple(sorted(r[0] for r in rows))


def _release_stmts() -> tuple[Any, Any]:
    same_job = and_(
        task.c.dataset_id == bindparam("p_dataset"),
        task.c.job_index == bindparam("p_job"),
        task.c.task_index.in_(bindparam("p_children", expanding=True)),
    )
    count_down = update(task).where(same_job).values(deps_pending=task.c.deps_pending - 1)
    release = (
        update(task)
        .where(same_job, task.c.deps_pending == 0, task.c.status == TaskStatus.IDLE.value)
        .values(status=TaskStatus.WAITING.value, status_changed=bindparam("p_now"))
    )
    return count_down, release


def release_children(conn: Connection, row: TaskRow, now: float) -> None:
    """A task completed: count down its children's pending dependencies; ready ones wait."""
    children = children_of(conn, row.dataset_id, row.task_index)
    if not children:
        return
    check_task_transition(TaskStatus.IDLE, TaskStatus.WAITING)
    params = {
        "p_dataset": row.dataset_id, "p_job": row.job_index, "p_children": list(children),
        "p_now": now,
    }  # fmt: skip
    count_down, release = prepared("release_children", _release_stmts)
    conn.execute(count_down, params)
    released = conn.execute(release, params).rowcount
    if released:
        mark_ready(conn, released)


# -- roll-ups ---------------------------------------------------------------------------------


def refresh_dataset(conn: Connection, dataset_id: int, now: float, actor: str) -> DatasetStatus:
    """Derive the dataset's status from its counters and flags; store and log a change."""
    stmt = prepared(
        "dataset_progress",
        lambda: select(
            dataset.c.status,
            dataset.c.jobs_submitted,
            dataset.c.jobs_materialized,
            dataset.c.jobs_complete,
            dataset.c.jobs_failed,
            dataset.c.truncated,
            dataset.c.always_active,
        ).where(dataset.c.id == bindparam("p")),
    )
    d = conn.execute(stmt, {"p": dataset_id}).one()
    old = DatasetStatus(d.status)
    new = derive_dataset_status(
        DatasetProgress(
            jobs_submitted=d.jobs_submitted,
            jobs_materialized=d.jobs_materialized,
            jobs_complete=d.jobs_complete,
            jobs_failed=d.jobs_failed,
            suspended=old is DatasetStatus.SUSPENDED,
            truncated=d.truncated,
            always_active=d.always_active,
        )
    )
    if new is not old:
        check_dataset_transition(old, new)
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(status=new.value, updated_at=now)
        )
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "status",
            dataset_id=dataset_id, old=old.value, new=new.value,
        )  # fmt: skip
    return new


def _job_changed_stmts() -> tuple[Any, Any]:
    job_status = (
        update(job)
        .where(job.c.dataset_id == bindparam("p_dataset"), job.c.job_index == bindparam("p_job"))
        .values(status=bindparam("p_status"), status_changed=bindparam("p_now"))
    )
    dataset_counts = (
        update(dataset)
        .where(dataset.c.id == bindparam("p_dataset"))
        .values(
            jobs_complete=dataset.c.jobs_complete + bindparam("p_dc"),
            jobs_failed=dataset.c.jobs_failed + bindparam("p_df"),
            updated_at=bindparam("p_now"),
        )
    )
    return job_status, dataset_counts


def _job_changed(
    conn: Connection, dataset_id: int, job_index: int, old: JobStatus, new: JobStatus,
    now: float, actor: str,
) -> None:  # fmt: skip
    check_job_transition(old, new)
    job_status, dataset_counts = prepared("job_changed", _job_changed_stmts)
    conn.execute(
        job_status,
        {"p_dataset": dataset_id, "p_job": job_index, "p_status": new.value, "p_now": now},
    )
    record_event(
        conn, now, actor, "job", f"{dataset_id}.{job_index}", "status",
        dataset_id=dataset_id, old=old.value, new=new.value,
    )  # fmt: skip
    dc = int(new is JobStatus.COMPLETE) - int(old is JobStatus.COMPLETE)
    df = int(new is JobStatus.FAILED) - int(old is JobStatus.FAILED)
    if dc or df:
        conn.execute(
            dataset_counts, {"p_dataset": dataset_id, "p_dc": dc, "p_df": df, "p_now": now}
        )
        refresh_dataset(conn, dataset_id, now, actor)


def _roll_up_stmts() -> tuple[Any, Any]:
    where = and_(job.c.dataset_id == bindparam("p_dataset"), job.c.job_index == bindparam("p_job"))
    counters = (
        update(job)
        .where(where)
        .values(
            n_complete=job.c.n_complete + bindparam("p_dc"),
            n_failed=job.c.n_failed + bindparam("p_df"),
            n_suspended=job.c.n_suspended + bindparam("p_ds"),
            failures=job.c.failures + bindparam("p_f"),
        )
    )
    read = select(
        job.c.status, job.c.n_tasks, job.c.n_complete, job.c.n_failed,
        job.c.n_suspended, job.c.failures,
    ).where(where)  # fmt: skip
    return counters, read


def roll_up(
    conn: Connection,
    dataset_id: int,
    job_index: int,
    deltas: tuple[int, int, int],
    failures_delta: int,
    now: float,
    actor: str,
) -> None:
    """Apply a task's change to its job's counters, and the job's to the dataset's."""
    dc, df, ds = deltas
    if not (dc or df or ds or failures_delta):
        return
    counters, read = prepared("roll_up", _roll_up_stmts)
    where = {"p_dataset": dataset_id, "p_job": job_index}
    conn.execute(counters, {**where, "p_dc": dc, "p_df": df, "p_ds": ds, "p_f": failures_delta})
    j = conn.execute(read, where).one()
    old = JobStatus(j.status)
    new = derive_job_status(
        JobCounts(j.n_tasks, j.n_complete, j.n_failed, j.n_suspended, j.failures)
    )
    if new is not old:
        _job_changed(conn, dataset_id, job_index, old, new, now, actor)


# -- the single-task path ---------------------------------------------------------------------


def close_attempt(
    conn: Connection,
    task_id: int,
    number: int,
    outcome: AttemptOutcome,
    now: float,
    values: Mapping[str, Any] | None = None,
) -> None:
    """End an open attempt with ``outcome`` (complete, failed, reset, timeout, suspended, ...)."""
    extra = dict(values or {})
    keys = tuple(sorted(extra))
    stmt = prepared(
        ("close_attempt", keys),
        lambda: (
            update(task_attempt)
            .where(
                task_attempt.c.task_id == bindparam("p_task"),
                task_attempt.c.number == bindparam("p_number"),
                task_attempt.c.outcome == AttemptOutcome.OPEN.value,
            )
            .values(
                outcome=bindparam("v_outcome"),
                ended_at=bindparam("v_ended_at"),
                **{k: bindparam(f"v_{k}") for k in keys},
            )
        ),
    )
    conn.execute(
        stmt,
        {"p_task": task_id, "p_number": number, "v_outcome": outcome.value, "v_ended_at": now,
         **{f"v_{k}": v for k, v in extra.items()}},
    )  # fmt: skip


def _change_stmt(keys: tuple[str, ...]) -> Any:
    def build() -> Any:
        return (
            update(task)
            .where(
                task.c.id == bindparam("p_id"),
                task.c.status == bindparam("p_status"),
                task.c.attempts == bindparam("p_attempts"),
            )
            .values(
                failures=task.c.failures + bindparam("v_failures"),
                **{k: bindparam(f"v_{k}") for k in keys},
            )
        )

    return prepared(("change_task", keys), build)


def change_task(
    conn: Connection,
    row: TaskRow,
    new: TaskStatus,
    now: float,
    actor: str,
    *,
    values: Mapping[str, Any] | None = None,
    failures_delta: int = 0,
    outcome: AttemptOutcome | None = None,
    outcome_values: Mapping[str, Any] | None = None,
    action: str | None = None,
    reason: str = "",
) -> bool:
    """Move one task from ``row.status`` to ``new`` if nobody changed it meanwhile.

    Returns False (and changes nothing) when the task's status or attempt number is no
    longer what ``row`` says. An open attempt is closed with ``outcome`` when the task leaves
    ``queued``/``processing``; ``action`` writes an event.
    """
    check_task_transition(row.status, new)
    updates: dict[str, Any] = {"status": new.value, "status_changed": now, **(values or {})}
    if new not in ACTIVE_TASK_STATES:
        updates.setdefault("phase", None)
    result = conn.execute(
        _change_stmt(tuple(sorted(updates))),
        {"p_id": row.id, "p_status": row.status.value, "p_attempts": row.attempts,
         "v_failures": failures_delta, **{f"v_{k}": v for k, v in updates.items()}},
    )  # fmt: skip
    if result.rowcount != 1:
        return False
    if new is TaskStatus.WAITING:
        mark_ready(conn)
    if row.status in ACTIVE_TASK_STATES and new not in ACTIVE_TASK_STATES:
        if outcome is None:
            raise ValueError(f"task {row.id} leaves {row.status.value} without an attempt outcome")
        close_attempt(conn, row.id, row.attempts, outcome, now, outcome_values)
    roll_up(
        conn, row.dataset_id, row.job_index, counter_deltas(row.status, new),
        failures_delta, now, actor,
    )  # fmt: skip
    if new is TaskStatus.COMPLETE:
        release_children(conn, row, now)
    if action:
        record_event(
            conn, now, actor, "task", str(row.id), action,
            dataset_id=row.dataset_id, old=row.status.value, new=new.value, reason=reason,
        )  # fmt: skip
    return True


def json_or_none(value: Mapping[str, Any] | None) -> str | None:
    """Compact JSON for a JSON column, or None for an empty mapping."""
    return json.dumps(value, sort_keys=True) if value else None
