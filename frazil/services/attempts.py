"""What a pilot (and its site) report about one attempt, each checked against its passkey.

Every call names the task, the attempt number it was given at the claim, and the passkey.
A report from an attempt that is no longer the task's current one (the task was reset and
claimed again, or finished, or deleted with its dataset) raises ``StaleAttempt`` and changes
nothing; a wrong passkey raises ``BadPasskey``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from frazil.errors import (
    BadPasskey,
    JobSpecError,
    NotFound,
    Rejected,
    SpecError,
    StaleAttempt,
    TooLarge,
)
from frazil.model.policy import Policy, status_after_failure
from frazil.model.records import FileRecord, Usage
from frazil.model.states import (
    ACTIVE_TASK_STATES,
    AttemptOutcome,
    TaskPhase,
    TaskStatus,
    attempt_is_current,
    check_phase_transition,
    failure_outcome,
)
from frazil.services import sites, specs
from frazil.services.keys import key_matches
from frazil.services.transitions import TaskRow, change_task, load_task
from frazil.store.db import Database
from frazil.store.prepared import prepared
from frazil.store.schema import NAME, dataset, file, task, task_attempt, task_stat
from frazil.wire import Failure, Finish

#: A task that ran out of memory, disk or time asks for this much more of what it used.
RAISE_FACTOR = 1.5
MAX_ERROR = 20_000
#: A task row and its attempt row, authenticated.
Checked = tuple[TaskRow, Any]


@dataclass(frozen=True)
class ReportCaps:
    """What one report of a pilot may carry (``[server] max_report_stats`` and
    ``max_report_files``): each statistic and file is a row, written while the report's
    transaction holds its locks, and every statistic is summed on the dataset's stats page."""

    stats: int = 1000
    files: int = 1000


DEFAULT_CAPS = ReportCaps()


def check_report(stats: Mapping[str, float], files: Sequence[FileRecord], caps: ReportCaps) -> None:
    """Raise ``TooLarge`` for a report past ``caps`` (values in hand only: no query)."""
    if len(stats) > caps.stats:
        raise TooLarge(
            f"a report may carry at most {caps.stats} statistics ([server] "
            f"max_report_stats), this one has {len(stats)}"
        )
    if len(files) > caps.files:
        raise TooLarge(
            f"a report may carry at most {caps.files} files ([server] max_report_files), "
            f"this one has {len(files)}"
        )
    for name in stats:
        if not 0 < len(name) <= NAME:
            raise TooLarge(
                f"a statistic's name is 1 to {NAME} characters, not {len(name)}: "
                f"{name[:40]!r}{'...' if len(name) > 40 else ''}"
            )


def authenticate(
    conn: Connection, task_id: int, attempt: int, passkey: str, states: Collection[TaskStatus],
    *, attempt_row: Any = None,
) -> Checked:  # fmt: skip
    """The task and attempt rows, if ``passkey`` opens this current attempt in ``states``
    (``attempt_row``: the attempt's row, when the caller has just read it)."""
    return _authenticate(conn, task_id, attempt, passkey, states, attempt_row)


def attempt_row(conn: Connection, task_id: int, number: int) -> Any:
    """The row of attempt ``number`` of task ``task_id`` (None: there is none)."""
    stmt = prepared(
        "attempt",
        lambda: select(task_attempt).where(
            task_attempt.c.task_id == bindparam("p_task"),
            task_attempt.c.number == bindparam("p_number"),
        ),
    )
    return conn.execute(stmt, {"p_task": task_id, "p_number": number}).first()


def _authenticate(
    conn: Connection,
    task_id: int,
    attempt: int,
    passkey: str,
    states: Collection[TaskStatus],
    a: Any = None,
) -> tuple[TaskRow, Any]:
    row = load_task(conn, task_id)
    if row is None:  # its dataset was deleted (or the id is wrong): no attempt of it is current
        raise StaleAttempt(f"task {task_id} does not exist (its dataset may have been deleted)")
    if a is None:
        a = attempt_row(conn, task_id, attempt)
    if a is None:
        raise NotFound(f"task {task_id} has no attempt {attempt}")
    if not key_matches(a.passkey_hash, passkey):
        raise BadPasskey(f"wrong passkey for task {task_id} attempt {attempt}")
    if not attempt_is_current(
        status=row.status, attempts=row.attempts, number=attempt, outcome=a.outcome, states=states
    ):
        raise StaleAttempt(
            f"task {task_id} attempt {attempt} is no longer current "
            f"(task is {row.status.value}, attempt {row.attempts}; this attempt: {a.outcome})"
        )
    return row, a


def authenticated(
    conn: Connection, task_id: int, attempt: int, passkey: str, states: Collection[TaskStatus]
) -> tuple[TaskRow, Any]:
    """The task and attempt rows of a current attempt whose passkey matches (``NotFound``,
    ``BadPasskey`` or ``StaleAttempt`` otherwise)."""
    return _authenticate(conn, task_id, attempt, passkey, states)


def _policy(conn: Connection, dataset_id: int) -> Policy:
    d = conn.execute(
        select(dataset.c.max_failures, dataset.c.debug).where(dataset.c.id == dataset_id)
    ).one()
    return Policy(max_failures=d.max_failures, debug=d.debug)


def start(
    db: Database, task_id: int, attempt: int, passkey: str, *, now: float, host: str = ""
) -> None:
    """The pilot started: ``queued`` → ``processing``.

    Said again for the same open attempt (the first answer was lost and the pilot's client
    retried), it is accepted and changes nothing.
    """

    def run(conn: Connection) -> None:
        row, _ = _authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
        if row.status is TaskStatus.PROCESSING:
            return
        conn.execute(
            update(task_attempt)
            .where(task_attempt.c.task_id == task_id, task_attempt.c.number == attempt)
            .values(started_at=now, host=host[:255] or None)
        )
        if not change_task(
            conn, row, TaskStatus.PROCESSING, now, "pilot", values={"heartbeat_at": now}
        ):
            raise StaleAttempt(f"task {task_id} changed while starting")

    db.transaction(run)


def spec(
    db: Database,
    task_id: int,
    attempt: int,
    passkey: str,
    *,
    now: float,
    system: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved spec the attempt runs (stored with the attempt the first time).

    A spec that cannot be resolved raises its ``SpecError`` after failing the attempt with
    it (``fail_unresolvable``): the pilot has nothing to run and nothing to report.
    """

    def run(conn: Connection) -> dict[str, Any]:
        row, a = _authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
        return specs.spec_in(conn, row, a, system)

    try:
        return db.transaction(run)
    except SpecError as exc:
        error = exc

    def unresolvable(conn: Connection) -> None:
        row, a = _authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
        fail_unresolvable(conn, row, a.id, error, now=now)

    db.transaction(unresolvable)
    raise error


def fail_unresolvable(
    conn: Connection, row: TaskRow, attempt_id: int, error: SpecError, *, now: float
) -> TaskStatus:
    """Fail the task's current attempt, whose spec cannot be resolved, with the located error:
    at once when no site could resolve it (``JobSpecError``), else as any failure."""
    return fail_current(
        conn, row, Failure(f"the task's spec cannot be resolved: {error}"), now=now,
        actor="pilot", outcome=AttemptOutcome.FAILED, attempt_id=attempt_id,
        final=isinstance(error, JobSpecError),
    )  # fmt: skip


def heartbeat(
    db: Database, task_id: int, attempt: int, passkey: str, *, now: float,
    phase: TaskPhase | None = None,
) -> None:  # fmt: skip
    """The pilot is alive (and, with ``phase``, moved on to that phase)."""
    db.transaction(lambda conn: heartbeat_in(conn, task_id, attempt, passkey, now=now, phase=phase))


def heartbeat_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, *, now: float,
    phase: TaskPhase | None = None,
) -> Checked:  # fmt: skip
    """``heartbeat`` within a transaction; returns the attempt it authenticated."""
    checked = _authenticate(conn, task_id, attempt, passkey, [TaskStatus.PROCESSING])
    a = checked[1]
    values: dict[str, Any] = {"heartbeat_at": now}
    if phase is not None:
        old = TaskPhase(a.phase) if a.phase else None
        if old is not phase:
            check_phase_transition(old, phase)
            values["phase"] = phase.value
            conn.execute(
                update(task_attempt).where(task_attempt.c.id == a.id).values(phase=phase.value)
            )
    conn.execute(
        update(task).where(task.c.id == task_id, task.c.attempts == attempt).values(**values)
    )
    return checked


@dataclass(frozen=True)
class Beat:
    """One heartbeat of a batch: which attempt, its passkey, and maybe its new phase."""

    task_id: int
    attempt: int
    passkey: str
    phase: TaskPhase | None = None


def heartbeats(db: Database, beats: Sequence[Beat], *, now: float) -> list[str]:
    """Many heartbeats in one transaction (a multi-task pilot's, or a site's on their behalf).

    Returns, for each, ``ok``, ``stale`` (the attempt is no longer current, or its task was
    deleted with its dataset) or ``denied`` (a wrong passkey or an unknown attempt); one bad
    beat does not spoil the others.
    """
    if len(beats) > MAX_BEATS:
        raise Rejected(f"at most {MAX_BEATS} heartbeats at once, not {len(beats)}")

    def run(conn: Connection) -> list[str]:
        ids = sorted({b.task_id for b in beats})
        tasks = {
            r.id: r
            for r in conn.execute(
                select(task.c.id, task.c.status, task.c.attempts).where(task.c.id.in_(ids))
            )
        }
        opened = {
            (r.task_id, r.number): r
            for r in conn.execute(
                select(task_attempt.c.id, task_attempt.c.task_id, task_attempt.c.number,
                       task_attempt.c.passkey_hash, task_attempt.c.outcome, task_attempt.c.phase)
                .where(task_attempt.c.task_id.in_(ids))
            )
        }  # fmt: skip
        results, alive = [], []
        for b in beats:
            t, a = tasks.get(b.task_id), opened.get((b.task_id, b.attempt))
            if t is None:  # its dataset was deleted: the attempt is over
                results.append("stale")
                continue
            if a is None or not key_matches(a.passkey_hash, b.passkey):
                results.append("denied")
                continue
            if not attempt_is_current(
                status=t.status, attempts=t.attempts, number=b.attempt, outcome=a.outcome,
                states=(TaskStatus.PROCESSING,),
            ):  # fmt: skip
                results.append("stale")
                continue
            results.append("ok")
            alive.append(b.task_id)
            old = TaskPhase(a.phase) if a.phase else None
            if b.phase is not None and b.phase is not old:
                check_phase_transition(old, b.phase)
                conn.execute(
                    update(task_attempt)
                    .where(task_attempt.c.id == a.id)
                    .values(phase=b.phase.value)
                )
                conn.execute(update(task).where(task.c.id == b.task_id).values(phase=b.phase.value))
        if alive:
            conn.execute(update(task).where(task.c.id.in_(alive)).values(heartbeat_at=now))
        return results

    return db.transaction(run)


MAX_BEATS = 1000


def _usage_values(usage: Usage | None) -> dict[str, Any]:
    if usage is None:
        return {}
    return {
        "cpu_time": usage.cpu_time,
        "wall_time": usage.wall_time,
        "max_memory": usage.max_memory,
        "max_disk": usage.max_disk,
    }


def _store_stats(
    conn: Connection, row: TaskRow, attempt_id: int, stats: Mapping[str, float]
) -> None:
    rows = [
        {
            "attempt_id": attempt_id,
            "dataset_id": row.dataset_id,
            "task_name": row.name,
            "name": name,
            "value": float(value),
        }
        for name, value in stats.items()
    ]
    if rows:
        conn.execute(insert(task_stat), rows)


def finish(
    db: Database, task_id: int, attempt: int, passkey: str, done: Finish | None = None, *,
    now: float, actor: str = "pilot", caps: ReportCaps = DEFAULT_CAPS,
) -> None:  # fmt: skip
    """The attempt succeeded: ``processing`` → ``complete``; its dependents may start.

    A report past ``caps`` raises ``TooLarge`` and changes nothing.
    """
    db.transaction(
        lambda conn: finish_in(
            conn, task_id, attempt, passkey, done or Finish(), now=now, actor=actor, caps=caps
        )
    )


def finish_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, done: Finish, *, now: float,
    actor: str = "pilot", checked: Checked | None = None, caps: ReportCaps = DEFAULT_CAPS,
) -> None:  # fmt: skip
    """``finish`` within a transaction (``checked``: the attempt was authenticated already)."""
    row, a = checked or _authenticate(conn, task_id, attempt, passkey, [TaskStatus.PROCESSING])
    check_report(done.stats, done.files, caps)
    finished = change_task(
        conn, row, TaskStatus.COMPLETE, now, actor, outcome=AttemptOutcome.COMPLETE,
        outcome_values={"exit_code": 0, **_usage_values(done.usage)},
    )  # fmt: skip
    if not finished:
        raise StaleAttempt(f"task {task_id} changed while finishing")
    _store_stats(conn, row, a.id, done.stats)
    if done.files:
        conn.execute(
            insert(file),
            [
                {
                    "dataset_id": row.dataset_id,
                    "task_id": task_id,
                    "attempt_id": a.id,
                    "url": f.url,
                    "local": f.local,
                    "size": f.size,
                    "checksum_type": f.checksum_type,
                    "checksum": f.checksum,
                    "movement": f.movement,
                    "type": f.type,
                    "created_at": now,
                }
                for f in done.files
            ],
        )


def fail(
    db: Database, task_id: int, attempt: int, passkey: str, failure: Failure, *, now: float,
    actor: str = "pilot", caps: ReportCaps = DEFAULT_CAPS,
) -> TaskStatus:  # fmt: skip
    """The attempt failed: retry (``waiting``), give up (``failed``) or hold (``suspended``).

    ``failure.exhausted`` names the resources the attempt ran out of (memory, disk, time):
    the next attempt asks for 1.5 times what this one used (or requested, when nothing was
    measured). ``failure.counts`` false is for attempts stopped from outside (the batch
    system preempted or cancelled the job): the task waits again without counting a
    failure. Returns the task's new status. A report past ``caps`` raises ``TooLarge`` and
    changes nothing.
    """
    return db.transaction(
        lambda conn: fail_in(
            conn, task_id, attempt, passkey, failure, now=now, actor=actor, caps=caps
        )
    )


def fail_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, failure: Failure, *,
    now: float, actor: str = "pilot", checked: Checked | None = None,
    caps: ReportCaps = DEFAULT_CAPS,
) -> TaskStatus:  # fmt: skip
    """``fail`` within a transaction (``checked``: the attempt was authenticated already)."""
    row, a = checked or _authenticate(conn, task_id, attempt, passkey, ACTIVE_TASK_STATES)
    check_report(failure.stats, (), caps)
    outcome = failure_outcome(timeout=failure.timeout, counts=failure.counts)
    return fail_current(conn, row, failure, now=now, actor=actor, outcome=outcome,
                        attempt_id=a.id)  # fmt: skip


def fail_current(
    conn: Connection, row: TaskRow, failure: Failure, *, now: float, actor: str,
    outcome: AttemptOutcome, attempt_id: int | None, final: bool = False,
) -> TaskStatus:  # fmt: skip
    """End the task's current attempt unsuccessfully and move the task on.

    Shared by pilots' reports, sites' reports and the watchdog. A counted failure follows
    the dataset's policy; an uncounted one (preemption) simply waits again; a ``final`` one
    (no site could run the task) fails it at once, without its remaining retries.
    """
    counts = failure.counts
    error = failure.error.replace("\0", "\ufffd")  # a program's output may hold NULs
    policy = _policy(conn, row.dataset_id)
    new = (
        status_after_failure(row.failures + 1, policy, final=final)
        if counts
        else TaskStatus.WAITING
    )
    if new is TaskStatus.WAITING and row.deps_pending:
        new = TaskStatus.IDLE
    values: dict[str, Any] = _raised_requests(conn, row, failure.usage, failure.exhausted)
    retries = counts and new in (TaskStatus.WAITING, TaskStatus.IDLE)
    # a failure that may be the site's: the retry prefers another site, if one could take it
    values["avoid_site"] = sites.site_to_avoid(conn, row.id, now) if retries else None
    done = change_task(
        conn, row, new, now, actor, values=values, failures_delta=int(counts), outcome=outcome,
        outcome_values={
            "error": error[:MAX_ERROR], "exit_code": failure.exit_code,
            **_usage_values(failure.usage),
        },
        action=outcome.value, reason=error[:2000],
    )  # fmt: skip
    if not done:
        raise StaleAttempt(f"task {row.id} changed while failing")
    if attempt_id is not None:
        _store_stats(conn, row, attempt_id, failure.stats)
    return new


def _raised_requests(
    conn: Connection, row: TaskRow, usage: Usage | None, exhausted: Sequence[str]
) -> dict[str, float]:
    if not exhausted:
        return {}
    current = conn.execute(
        select(task.c.memory, task.c.disk, task.c.time).where(task.c.id == row.id)
    ).one()
    measured = {
        "memory": usage.max_memory if usage else None,
        "disk": usage.max_disk if usage else None,
        "time": usage.wall_time / 3600.0 if usage and usage.wall_time else None,
    }
    values = {}
    for resource in exhausted:
        used = measured[resource] or getattr(current, resource)
        values[resource] = max(getattr(current, resource), RAISE_FACTOR * used)
    return values
