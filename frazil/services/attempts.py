"""What a pilot (and its site) report about one attempt, each checked against its passkey.

Every call names the task, the attempt number it was given at the claim, and the passkey.
A report from an attempt that is no longer the task's current one (the task was reset and
claimed again, or finished) raises ``StaleAttempt`` and changes nothing; a wrong passkey
raises ``BadPasskey``.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from frazil.errors import BadPasskey, NotFound, Rejected, StaleAttempt
from frazil.model.policy import Policy, status_after_failure
from frazil.model.records import Claim, FileRecord, Usage
from frazil.model.resolve import JobInfo, resolve_task
from frazil.model.spec import TASK_NAME
from frazil.model.states import TaskPhase, TaskStatus, check_phase_transition
from frazil.services.claim import hash_passkey
from frazil.services.materialize import config_of
from frazil.services.transitions import TaskRow, change_task, load_task
from frazil.store.db import Database
from frazil.store.prepared import prepared
from frazil.store.schema import dataset, file, site, task, task_attempt, task_log, task_stat

#: A task that ran out of memory, disk or time asks for this much more of what it used.
RAISE_FACTOR = 1.5
RESOURCES = ("memory", "disk", "time")
MAX_ERROR = 20_000
#: A task row and its attempt row, authenticated.
Checked = tuple[TaskRow, Any]


def authenticate(
    conn: Connection, task_id: int, attempt: int, passkey: str, states: Sequence[TaskStatus]
) -> Checked:
    """The task and attempt rows, if ``passkey`` opens this current attempt in ``states``."""
    return _authenticate(conn, task_id, attempt, passkey, states)


def _ATTEMPT() -> Any:  # noqa: N802 - a statement, built once
    return prepared(
        "attempt",
        lambda: select(task_attempt).where(
            task_attempt.c.task_id == bindparam("p_task"),
            task_attempt.c.number == bindparam("p_number"),
        ),
    )


def _authenticate(
    conn: Connection, task_id: int, attempt: int, passkey: str, states: Sequence[TaskStatus]
) -> tuple[TaskRow, Any]:
    row = load_task(conn, task_id)
    if row is None:
        raise NotFound(f"no task {task_id}")
    a = conn.execute(_ATTEMPT(), {"p_task": task_id, "p_number": attempt}).first()
    if a is None:
        raise NotFound(f"task {task_id} has no attempt {attempt}")
    if not hmac.compare_digest(a.passkey_hash, hash_passkey(passkey)):
        raise BadPasskey(f"wrong passkey for task {task_id} attempt {attempt}")
    if row.attempts != attempt or a.outcome != "open" or row.status not in states:
        raise StaleAttempt(
            f"task {task_id} attempt {attempt} is no longer current "
            f"(task is {row.status.value}, attempt {row.attempts}; this attempt: {a.outcome})"
        )
    return row, a


def _policy(conn: Connection, dataset_id: int) -> Policy:
    d = conn.execute(
        select(dataset.c.max_failures, dataset.c.debug).where(dataset.c.id == dataset_id)
    ).one()
    return Policy(max_failures=d.max_failures, debug=d.debug)


def record_batch_id(db: Database, task_id: int, attempt: int, batch_id: str, *, site: str) -> None:
    """The site submitted the attempt to its batch system under ``batch_id``."""

    def run(conn: Connection) -> None:
        result = conn.execute(
            update(task_attempt)
            .where(
                task_attempt.c.task_id == task_id,
                task_attempt.c.number == attempt,
                task_attempt.c.site == site,
                task_attempt.c.outcome == "open",
            )
            .values(batch_id=batch_id[:255])
        )
        if result.rowcount != 1:
            raise StaleAttempt(f"task {task_id} attempt {attempt} is not open at site {site}")

    db.transaction(run)


def start(
    db: Database, task_id: int, attempt: int, passkey: str, *, now: float, host: str = ""
) -> None:
    """The pilot started: ``queued`` → ``processing``."""

    def run(conn: Connection) -> None:
        row, _ = _authenticate(conn, task_id, attempt, passkey, [TaskStatus.QUEUED])
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
    system: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The resolved spec the attempt runs (stored with the attempt the first time)."""

    def run(conn: Connection) -> dict[str, Any]:
        row, a = _authenticate(
            conn, task_id, attempt, passkey, [TaskStatus.QUEUED, TaskStatus.PROCESSING]
        )
        return spec_in(conn, row, a, system)

    return db.transaction(run)


def site_system(conn: Connection, name: str) -> dict[str, Any]:
    """The ``$system()`` values a site registered."""
    stmt = prepared("site_info", lambda: select(site.c.info).where(site.c.name == bindparam("p")))
    registered = conn.execute(stmt, {"p": name}).first()
    values: dict[str, Any] = json.loads(registered.info).get("system", {}) if registered else {}
    return values


def spec_in(
    conn: Connection, row: TaskRow, a: Any, system: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``spec`` for an attempt row already checked."""
    if a.spec is not None:
        stored: dict[str, Any] = json.loads(a.spec)
        return stored
    values = site_system(conn, a.site) if system is None else system
    claim = Claim(
        row.id, row.attempts, "", row.dataset_id, row.job_index, row.task_index, row.name,
        0, 0, 0.0, 0.0, 0.0,
    )  # fmt: skip
    (resolved,) = specs_for(conn, [claim], {row.id: a}, values)
    text = json.dumps(resolved, default=str)
    conn.execute(update(task_attempt).where(task_attempt.c.id == a.id).values(spec=text))
    stored_now: dict[str, Any] = json.loads(text)  # the same form as later reads
    return stored_now


def specs_for(
    conn: Connection, claims: Sequence[Claim], attempt_rows: Mapping[int, Any],
    system: Mapping[str, Any],
) -> list[dict[str, Any]]:  # fmt: skip
    """The resolved specs of claimed tasks (their attempts' rows by task id), not stored."""
    datasets: dict[int, Any] = {}
    out = []
    for c in claims:
        a = attempt_rows[c.task_id]
        d = datasets.get(c.dataset_id)
        if d is None:
            stmt = prepared(
                "dataset_seed",
                lambda: select(dataset.c.jobs_submitted, dataset.c.seed).where(
                    dataset.c.id == bindparam("p")
                ),
            )
            d = datasets[c.dataset_id] = conn.execute(stmt, {"p": c.dataset_id}).one()
        config = config_of(conn, c.dataset_id, a.config_version)
        info = JobInfo(
            dataset=c.dataset_id, job=c.job_index, jobs_submitted=d.jobs_submitted,
            dataset_seed=d.seed, system=system,
        )  # fmt: skip
        resolved = resolve_task(config, c.task_index, info).to_dict()
        _known_checksums(conn, c.dataset_id, resolved["data"])
        resolved.update(
            task_id=c.task_id, attempt=c.attempt, dataset=c.dataset_id,
            config_version=a.config_version,
        )  # fmt: skip
        out.append(json.loads(json.dumps(resolved, default=str)))  # the form later reads get
    return out


def _known_checksums(conn: Connection, dataset_id: int, data: list[dict[str, Any]]) -> None:
    """Give each input the checksum recorded when an earlier task of the dataset wrote it."""
    inputs = [d for d in data if d["movement"] in ("input", "both")]
    if not inputs:
        return
    rows = conn.execute(
        select(file.c.url, file.c.checksum_type, file.c.checksum, file.c.size)
        .where(
            file.c.dataset_id == dataset_id,
            file.c.url.in_([d["remote"] for d in inputs]),
            file.c.movement.in_(["output", "both"]),
            file.c.checksum.is_not(None),
        )
        .order_by(file.c.id)
    ).all()
    known = {r.url: r for r in rows}  # the newest record of each URL wins
    for d in inputs:
        r = known.get(d["remote"])
        if r is not None:
            d["checksum"] = f"{r.checksum_type}:{r.checksum}"
            d["size"] = r.size


def heartbeat(
    db: Database, task_id: int, attempt: int, passkey: str, *, now: float,
    phase: TaskPhase | None = None,
) -> None:  # fmt: skip
    """The pilot is alive (and, with ``phase``, moved on to that phase)."""

    def run(conn: Connection) -> None:
        _, a = _authenticate(conn, task_id, attempt, passkey, [TaskStatus.PROCESSING])
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

    db.transaction(run)


@dataclass(frozen=True)
class Beat:
    """One heartbeat of a batch: which attempt, its passkey, and maybe its new phase."""

    task_id: int
    attempt: int
    passkey: str
    phase: TaskPhase | None = None


def heartbeats(db: Database, beats: Sequence[Beat], *, now: float) -> list[str]:
    """Many heartbeats in one transaction (a multi-task pilot's, or a site's on their behalf).

    Returns, for each, ``ok``, ``stale`` (the attempt is no longer current) or ``denied`` (a
    wrong passkey or an unknown attempt); one bad beat does not spoil the others.
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
            if (
                t is None
                or a is None
                or not hmac.compare_digest(a.passkey_hash, hash_passkey(b.passkey))
            ):
                results.append("denied")
                continue
            if (
                t.attempts != b.attempt
                or a.outcome != "open"
                or t.status != TaskStatus.PROCESSING.value
            ):
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
            "name": str(name)[:255],
            "value": float(value),
        }
        for name, value in stats.items()
    ]
    if rows:
        conn.execute(insert(task_stat), rows)


def finish(
    db: Database, task_id: int, attempt: int, passkey: str, *, now: float,
    usage: Usage | None = None, stats: Mapping[str, float] | None = None,
    files: Sequence[FileRecord] = (), actor: str = "pilot",
) -> None:  # fmt: skip
    """The attempt succeeded: ``processing`` → ``complete``; its dependents may start."""
    db.transaction(
        lambda conn: finish_in(
            conn, task_id, attempt, passkey, now=now, usage=usage, stats=stats, files=files,
            actor=actor,
        )
    )  # fmt: skip


def finish_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, *, now: float,
    usage: Usage | None = None, stats: Mapping[str, float] | None = None,
    files: Sequence[FileRecord] = (), actor: str = "pilot", checked: Checked | None = None,
) -> None:  # fmt: skip
    """``finish`` within a transaction (``checked``: the attempt was authenticated already)."""
    row, a = checked or _authenticate(conn, task_id, attempt, passkey, [TaskStatus.PROCESSING])
    done = change_task(
        conn, row, TaskStatus.COMPLETE, now, actor,
        outcome="complete", outcome_values={"exit_code": 0, **_usage_values(usage)},
    )  # fmt: skip
    if not done:
        raise StaleAttempt(f"task {task_id} changed while finishing")
    _store_stats(conn, row, a.id, stats or {})
    if files:
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
                for f in files
            ],
        )


def fail(
    db: Database, task_id: int, attempt: int, passkey: str, *, now: float, error: str,
    usage: Usage | None = None, exhausted: Sequence[str] = (), exit_code: int | None = None,
    stats: Mapping[str, float] | None = None, actor: str = "pilot", outcome: str = "failed",
    counts: bool = True,
) -> TaskStatus:  # fmt: skip
    """The attempt failed: retry (``waiting``), give up (``failed``) or hold (``suspended``).

    ``exhausted`` names the resources the attempt ran out of (memory, disk, time): the next
    attempt asks for 1.5 times what this one used (or requested, when nothing was measured).
    ``counts=False`` is for attempts stopped from outside (the batch system preempted or
    cancelled the job): the task waits again without counting a failure. Returns the task's
    new status.
    """
    return db.transaction(
        lambda conn: fail_in(
            conn, task_id, attempt, passkey, now=now, error=error, usage=usage,
            exhausted=exhausted, exit_code=exit_code, stats=stats, actor=actor,
            outcome=outcome, counts=counts,
        )
    )  # fmt: skip


def fail_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, *, now: float, error: str,
    usage: Usage | None = None, exhausted: Sequence[str] = (), exit_code: int | None = None,
    stats: Mapping[str, float] | None = None, actor: str = "pilot", outcome: str = "failed",
    counts: bool = True, checked: Checked | None = None,
) -> TaskStatus:  # fmt: skip
    """``fail`` within a transaction (``checked``: the attempt was authenticated already)."""
    unknown = set(exhausted) - set(RESOURCES)
    if unknown:
        raise ValueError(f"unknown resources {sorted(unknown)}; known: {', '.join(RESOURCES)}")
    row, a = checked or _authenticate(
        conn, task_id, attempt, passkey, [TaskStatus.QUEUED, TaskStatus.PROCESSING]
    )
    return fail_current(
        conn, row, now=now, error=error, usage=usage, exhausted=exhausted,
        exit_code=exit_code, stats=stats, actor=actor, outcome=outcome, attempt_id=a.id,
        counts=counts,
    )  # fmt: skip


def lost(
    db: Database, task_id: int, attempt: int, *, site: str, now: float, reason: str,
    outcome: str = "vanished", counts: bool = True,
) -> TaskStatus | None:  # fmt: skip
    """A site reports that the attempt's batch job ended without a word from its pilot.

    The task is reset (counting a failure, unless ``counts`` is false: the site could not
    even submit it): a job that vanished is never assumed complete. Returns the task's new
    status, or None when the attempt had already ended (the pilot's report won the race).
    """

    def run(conn: Connection) -> TaskStatus | None:
        row = load_task(conn, task_id)
        if row is None:
            raise NotFound(f"no task {task_id}")
        a = conn.execute(
            select(task_attempt.c.id, task_attempt.c.site, task_attempt.c.outcome).where(
                task_attempt.c.task_id == task_id, task_attempt.c.number == attempt
            )
        ).first()
        if a is None:
            raise NotFound(f"task {task_id} has no attempt {attempt}")
        if a.site != site:
            raise Rejected(f"task {task_id} attempt {attempt} belongs to site {a.site!r}")
        if a.outcome != "open":
            return None
        return end_from_outside(
            conn, row, attempt, a.id, now=now, reason=reason, actor=f"site:{site}",
            outcome=outcome, counts=counts,
        )  # fmt: skip

    return db.transaction(run)


def end_from_outside(
    conn: Connection, row: TaskRow, attempt: int, attempt_id: int, *, now: float, reason: str,
    actor: str, outcome: str, counts: bool,
) -> TaskStatus | None:  # fmt: skip
    """End an open attempt whose batch job (or pilot) ended without reporting it.

    Nothing happens (None) unless it is still the task's current, active attempt; a job
    killed at its walltime asks for more time next time.
    """
    active = row.status in (TaskStatus.QUEUED, TaskStatus.PROCESSING)
    if row.attempts != attempt or not active:
        return None
    exhausted = ["time"] if outcome == "timeout" else []
    return fail_current(
        conn, row, now=now, error=reason, actor=actor, outcome=outcome, attempt_id=attempt_id,
        exhausted=exhausted, counts=counts,
    )  # fmt: skip


def stale_attempts(
    db: Database, site: str, pairs: Sequence[tuple[int, int]]
) -> list[tuple[int, int]]:
    """Which of a site's (task, attempt) pairs are no longer current: their batch jobs should go.

    An attempt is current while it is open and its task is queued or processing with that
    attempt number; a suspended, reset or finished task's batch job is only in the way.
    """
    if not pairs:
        return []
    ids = sorted({t for t, _ in pairs})
    with db.read() as conn:
        tasks = {
            r.id: r
            for r in conn.execute(
                select(task.c.id, task.c.status, task.c.attempts).where(task.c.id.in_(ids))
            )
        }
        rows = conn.execute(
            select(task_attempt.c.task_id, task_attempt.c.number, task_attempt.c.outcome,
                   task_attempt.c.site)
            .where(task_attempt.c.task_id.in_(ids))
        ).all()  # fmt: skip
    opened = {(r.task_id, r.number): r for r in rows}
    stale = []
    for task_id, number in pairs:
        t, a = tasks.get(task_id), opened.get((task_id, number))
        active = t is not None and t.status in _ACTIVE_VALUES
        current = (
            active and t is not None and a is not None and a.outcome == "open"
            and a.site == site and t.attempts == number
        )  # fmt: skip
        if not current:
            stale.append((task_id, number))
    return stale


_ACTIVE_VALUES = (TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value)

#: Logs keep their last this many characters.
MAX_LOG = 64 * 1024


def store_log(
    db: Database, task_id: int, attempt: int, passkey: str, *, name: str, text: str, now: float
) -> None:
    """Keep the tail of a log of the attempt (stdout, stderr, the pilot's own, a module's)."""
    db.transaction(
        lambda conn: store_log_in(conn, task_id, attempt, passkey, name=name, text=text, now=now)
    )


def store_log_in(
    conn: Connection, task_id: int, attempt: int, passkey: str, *, name: str, text: str,
    now: float, checked: Checked | None = None,
) -> None:  # fmt: skip
    """``store_log`` within a transaction (``checked``: the attempt was authenticated)."""
    if not TASK_NAME.match(name):  # shown to people and kept as a file name: plain
        raise Rejected(f"a log name is 1-100 letters, digits, '_', '.' or '-', got {name!r}")
    text = text.replace("\0", "\ufffd")  # program output may hold NULs; PostgreSQL text not
    row, a = checked or _authenticate(
        conn, task_id, attempt, passkey, [TaskStatus.QUEUED, TaskStatus.PROCESSING]
    )
    values = {"text": text[-MAX_LOG:], "size": len(text.encode()), "created_at": now}
    replace = prepared(
        "replace_log",
        lambda: (
            update(task_log)
            .where(
                task_log.c.attempt_id == bindparam("p_attempt"),
                task_log.c.name == bindparam("p_name"),
            )
            .values(
                text=bindparam("text"), size=bindparam("size"), created_at=bindparam("created_at")
            )
        ),
    )
    changed = conn.execute(replace, {"p_attempt": a.id, "p_name": name, **values})
    if changed.rowcount == 0:
        conn.execute(
            prepared("insert_log", lambda: insert(task_log)),
            {"attempt_id": a.id, "task_id": row.id, "name": name, **values},
        )


def fail_current(
    conn: Connection, row: TaskRow, *, now: float, error: str, usage: Usage | None = None,
    exhausted: Sequence[str] = (), exit_code: int | None = None,
    stats: Mapping[str, float] | None = None, actor: str, outcome: str, attempt_id: int | None,
    counts: bool = True,
) -> TaskStatus:  # fmt: skip
    """End the task's current attempt unsuccessfully and move the task on.

    Shared by pilots' reports, sites' reports and the watchdog. A counted failure follows
    the dataset's policy; an uncounted one (preemption) simply waits again.
    """
    error = error.replace("\0", "\ufffd")  # a program's output may hold NULs; PostgreSQL not
    policy = _policy(conn, row.dataset_id)
    new = status_after_failure(row.failures + 1, policy) if counts else TaskStatus.WAITING
    if new is TaskStatus.WAITING and row.deps_pending:
        new = TaskStatus.IDLE
    values = _raised_requests(conn, row, usage, exhausted)
    done = change_task(
        conn, row, new, now, actor, values=values, failures_delta=int(counts), outcome=outcome,
        outcome_values={
            "error": error[:MAX_ERROR], "exit_code": exit_code, **_usage_values(usage),
        },
        action=outcome, reason=error[:2000],
    )  # fmt: skip
    if not done:
        raise StaleAttempt(f"task {row.id} changed while failing")
    if attempt_id is not None:
        _store_stats(conn, row, attempt_id, stats or {})
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
