"""What people do to datasets, jobs and tasks: suspend, resume, reset, hard reset, priority.

A scope is a dataset, optionally narrowed to one job and/or one task name (or one task by
id). Each action is one transaction of bulk updates whose source states come from the
transition table, followed by a recount of the jobs it touched and one audit event.

- suspend: idle, waiting, queued and processing tasks are held; a dataset-wide suspend also
  suspends the dataset (nothing of it is claimed or materialized).
- resume: suspended tasks go back to waiting (or idle while a dependency is not complete).
- reset: queued, processing, failed and suspended tasks go back to waiting and count a
  failure (so a failed task gets one more try).
- hard reset: tasks return to idle with no failures, together with every task downstream of
  them in the same job; those whose dependencies are complete then wait.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, select, update

from frazil.errors import NotFound, Rejected
from frazil.model.limits import PRIORITY
from frazil.model.states import (
    ACTIVE_TASK_STATES,
    TASK_TRANSITIONS,
    AttemptOutcome,
    DatasetStatus,
    TaskStatus,
    check_dataset_transition,
    check_task_transition,
)
from frazil.services.datasets import find_dataset
from frazil.services.recount import recount
from frazil.services.transitions import dependency_edges, record_event, refresh_dataset
from frazil.store.db import Database, mark_ready
from frazil.store.schema import dataset, task, task_attempt


@dataclass(frozen=True)
class Scope:
    """Which tasks an action applies to."""

    dataset: int | str
    job: int | None = None
    task: str | None = None  # a task name within the job(s)
    task_id: int | None = None

    def describe(self) -> str:
        """``dataset 3 job 7 task level2`` and the like."""
        parts = [f"dataset {self.dataset}"]
        if self.job is not None:
            parts.append(f"job {self.job}")
        if self.task is not None:
            parts.append(f"task {self.task}")
        if self.task_id is not None:
            parts.append(f"task id {self.task_id}")
        return " ".join(parts)


@dataclass(frozen=True)
class _Resolved:
    dataset_id: int
    job: int | None
    indexes: tuple[int, ...] | None  # task indexes, or None for all

    def where(self) -> Any:
        clauses = [task.c.dataset_id == self.dataset_id]
        if self.job is not None:
            clauses.append(task.c.job_index == self.job)
        if self.indexes is not None:
            clauses.append(task.c.task_index.in_(self.indexes))
        return and_(*clauses)

    @property
    def whole_dataset(self) -> bool:
        return self.job is None and self.indexes is None


def _resolve(conn: Connection, scope: Scope) -> _Resolved:
    dataset_id = find_dataset(conn, scope.dataset)
    job = scope.job
    indexes: tuple[int, ...] | None = None
    if scope.task_id is not None:
        row = conn.execute(
            select(task.c.dataset_id, task.c.job_index, task.c.task_index).where(
                task.c.id == scope.task_id
            )
        ).first()
        if row is None or row.dataset_id != dataset_id:
            raise NotFound(f"no task {scope.task_id} in dataset {scope.dataset}")
        job, indexes = row.job_index, (row.task_index,)
    elif scope.task is not None:
        row = conn.execute(
            select(task.c.task_index)
            .where(task.c.dataset_id == dataset_id, task.c.name == scope.task)
            .limit(1)
        ).first()
        if row is None:
            raise NotFound(f"no task named {scope.task!r} in dataset {scope.dataset}")
        indexes = (row.task_index,)
    if job is not None:
        exists = conn.execute(
            select(task.c.id)
            .where(task.c.dataset_id == dataset_id, task.c.job_index == job)
            .limit(1)
        ).first()
        if exists is None:
            raise NotFound(f"no job {job} in dataset {scope.dataset}")
    return _Resolved(dataset_id, job, indexes)


def _sources(target: TaskStatus, wanted: set[TaskStatus]) -> list[str]:
    """States in ``wanted`` from which the transition table allows ``target``."""
    return sorted(s.value for s in wanted if target in TASK_TRANSITIONS[s])


def _close_attempts(
    conn: Connection, scope: _Resolved, outcome: AttemptOutcome, now: float
) -> None:
    active = select(task.c.id).where(
        scope.where(), task.c.status.in_([s.value for s in ACTIVE_TASK_STATES])
    )
    conn.execute(
        update(task_attempt)
        .where(
            task_attempt.c.outcome == AttemptOutcome.OPEN.value, task_attempt.c.task_id.in_(active)
        )
        .values(outcome=outcome.value, ended_at=now)
    )


def _jobs_with(conn: Connection, scope: _Resolved, states: list[str] | None) -> list[int]:
    """Jobs in scope with a task in one of ``states`` (any state: None)."""
    if scope.whole_dataset:
        return []  # the whole dataset is recounted
    if scope.job is not None:
        return [scope.job]
    where = [scope.where()]
    if states is not None:
        where.append(task.c.status.in_(states))
    return [r.job_index for r in conn.execute(select(task.c.job_index).where(*where).distinct())]


def _finish(
    conn: Connection, scope: _Resolved, now: float, actor: str, action: str, count: int,
    reason: str, jobs: list[int] | None,
) -> int:  # fmt: skip
    recount(conn, scope.dataset_id, now, actor, None if scope.whole_dataset else jobs)
    mark_ready(conn, max(count, 1))  # resumed or reset tasks wait again
    record_event(
        conn, now, actor, "dataset", str(scope.dataset_id), action,
        dataset_id=scope.dataset_id, count=count, reason=reason,
    )  # fmt: skip
    return count


def suspend(
    db: Database, scope: Scope, *, now: float, actor: str = "user", reason: str = ""
) -> int:
    """Hold the tasks in scope; returns how many were suspended."""
    wanted = {TaskStatus.IDLE, TaskStatus.WAITING, TaskStatus.QUEUED, TaskStatus.PROCESSING}

    def run(conn: Connection) -> int:
        s = _resolve(conn, scope)
        if s.whole_dataset:
            old = DatasetStatus(
                conn.execute(
                    select(dataset.c.status).where(dataset.c.id == s.dataset_id)
                ).scalar_one()
            )
            if old is not DatasetStatus.SUSPENDED:
                check_dataset_transition(old, DatasetStatus.SUSPENDED)
                conn.execute(
                    update(dataset)
                    .where(dataset.c.id == s.dataset_id)
                    .values(status=DatasetStatus.SUSPENDED.value, updated_at=now)
                )
        sources = _sources(TaskStatus.SUSPENDED, wanted)
        jobs = _jobs_with(conn, s, sources)
        _close_attempts(conn, s, AttemptOutcome.SUSPENDED, now)
        count = conn.execute(
            update(task)
            .where(s.where(), task.c.status.in_(sources))
            .values(status=TaskStatus.SUSPENDED.value, phase=None, status_changed=now)
        ).rowcount
        return _finish(conn, s, now, actor, "suspend", count, reason or scope.describe(), jobs)

    return db.transaction(run)


def resume(db: Database, scope: Scope, *, now: float, actor: str = "user", reason: str = "") -> int:
    """Let suspended tasks in scope run again; returns how many were resumed."""

    def run(conn: Connection) -> int:
        s = _resolve(conn, scope)
        if s.whole_dataset:
            _unsuspend_dataset(conn, s.dataset_id, now)
        jobs = _jobs_with(conn, s, [TaskStatus.SUSPENDED.value])
        count = 0
        for target, ready in ((TaskStatus.WAITING, True), (TaskStatus.IDLE, False)):
            check_task_transition(TaskStatus.SUSPENDED, target)
            deps = task.c.deps_pending == 0 if ready else task.c.deps_pending > 0
            count += conn.execute(
                update(task)
                .where(s.where(), task.c.status == TaskStatus.SUSPENDED.value, deps)
                .values(status=target.value, status_changed=now)
            ).rowcount
        return _finish(conn, s, now, actor, "resume", count, reason or scope.describe(), jobs)

    return db.transaction(run)


def reset(db: Database, scope: Scope, *, now: float, actor: str = "user", reason: str = "") -> int:
    """Send tasks in scope back to waiting, counting a failure; returns how many."""
    wanted = {TaskStatus.QUEUED, TaskStatus.PROCESSING, TaskStatus.FAILED, TaskStatus.SUSPENDED}

    def run(conn: Connection) -> int:
        s = _resolve(conn, scope)
        sources = _sources(TaskStatus.WAITING, wanted)
        jobs = _jobs_with(conn, s, sources)
        _close_attempts(conn, s, AttemptOutcome.RESET, now)
        count = 0
        for target, ready in ((TaskStatus.WAITING, True), (TaskStatus.IDLE, False)):
            check_task_transition(TaskStatus.SUSPENDED, target)
            deps = task.c.deps_pending == 0 if ready else task.c.deps_pending > 0
            allowed = [st for st in sources if target in TASK_TRANSITIONS[TaskStatus(st)]]
            count += conn.execute(
                update(task)
                .where(s.where(), task.c.status.in_(allowed), deps)
                .values(
                    status=target.value,
                    failures=task.c.failures + 1,
                    phase=None,
                    site=None,
                    status_changed=now,
                )
            ).rowcount
        if s.whole_dataset:
            _unsuspend_dataset(conn, s.dataset_id, now)
        return _finish(conn, s, now, actor, "reset", count, reason or scope.describe(), jobs)

    return db.transaction(run)


def _unsuspend_dataset(conn: Connection, dataset_id: int, now: float) -> None:
    """A suspended dataset processes again (its derived status follows at the roll-up)."""
    old = DatasetStatus(
        conn.execute(select(dataset.c.status).where(dataset.c.id == dataset_id)).scalar_one()
    )
    if old is DatasetStatus.SUSPENDED:
        check_dataset_transition(old, DatasetStatus.PROCESSING)
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(status=DatasetStatus.PROCESSING.value, updated_at=now)
        )


def _downstream(edges: list[tuple[int, int]], start: tuple[int, ...]) -> tuple[int, ...]:
    found = set(start)
    frontier = list(start)
    while frontier:
        index = frontier.pop()
        for child, parent in edges:
            if parent == index and child not in found:
                found.add(child)
                frontier.append(child)
    return tuple(sorted(found))


def hard_reset(
    db: Database, scope: Scope, *, now: float, actor: str = "user", reason: str = ""
) -> int:
    """Return tasks in scope and everything downstream of them to idle with no failures."""

    def run(conn: Connection) -> int:
        s = _resolve(conn, scope)
        edges = dependency_edges(conn, s.dataset_id)
        if s.indexes is not None:
            s = _Resolved(s.dataset_id, s.job, _downstream(edges, s.indexes))
        closure = set(s.indexes) if s.indexes is not None else None
        jobs = _jobs_with(conn, s, None)
        _close_attempts(conn, s, AttemptOutcome.HARD_RESET, now)
        # every state may go back to idle (TASK_TRANSITIONS); idle tasks are rewritten alike
        count = conn.execute(
            update(task)
            .where(s.where())
            .values(
                status=TaskStatus.IDLE.value,
                failures=0,
                phase=None,
                site=None,
                heartbeat_at=None,
                status_changed=now,
            )
        ).rowcount
        indexes = s.indexes if s.indexes is not None else _all_indexes(conn, s.dataset_id)
        for index in indexes:
            parents = [p for c, p in edges if c == index]
            inside = [p for p in parents if closure is None or p in closure]
            outside = [p for p in parents if closure is not None and p not in closure]
            here = and_(s.where(), task.c.task_index == index)
            conn.execute(update(task).where(here).values(deps_pending=len(inside)))
            if outside:
                where = [
                    task.c.dataset_id == s.dataset_id,
                    task.c.task_index.in_(outside),
                    task.c.status != TaskStatus.COMPLETE.value,
                ]
                if s.job is not None:
                    where.append(task.c.job_index == s.job)
                pending = Counter(
                    r.job_index for r in conn.execute(select(task.c.job_index).where(*where))
                )
                for job_index, n in pending.items():
                    conn.execute(
                        update(task)
                        .where(here, task.c.job_index == job_index)
                        .values(deps_pending=task.c.deps_pending + n)
                    )
        check_task_transition(TaskStatus.IDLE, TaskStatus.WAITING)
        conn.execute(
            update(task)
            .where(s.where(), task.c.status == TaskStatus.IDLE.value, task.c.deps_pending == 0)
            .values(status=TaskStatus.WAITING.value)
        )
        if s.whole_dataset:
            _unsuspend_dataset(conn, s.dataset_id, now)
        return _finish(conn, s, now, actor, "hard-reset", count, reason or scope.describe(), jobs)

    return db.transaction(run)


def _all_indexes(conn: Connection, dataset_id: int) -> tuple[int, ...]:
    n = conn.execute(select(dataset.c.tasks_per_job).where(dataset.c.id == dataset_id)).scalar_one()
    return tuple(range(n))


def set_priority(
    db: Database, ref: int | str, priority: float, *, now: float, actor: str = "user"
) -> None:
    """Change a dataset's priority (its weight in the fair share)."""
    problem = PRIORITY.problem(priority)
    if problem is not None:
        raise Rejected(f"priority {problem}")

    def run(conn: Connection) -> None:
        dataset_id = find_dataset(conn, ref)
        old = conn.execute(
            select(dataset.c.priority).where(dataset.c.id == dataset_id)
        ).scalar_one()
        conn.execute(
            update(dataset)
            .where(dataset.c.id == dataset_id)
            .values(priority=priority, updated_at=now)
        )
        record_event(
            conn, now, actor, "dataset", str(dataset_id), "set-priority",
            dataset_id=dataset_id, reason=f"{old:g} -> {priority:g}",
        )  # fmt: skip
        refresh_dataset(conn, dataset_id, now, actor)

    db.transaction(run)


#: What a person may do to the tasks of a scope, by the name the API and the CLI give it.
ACTIONS: Mapping[str, Callable[..., int]] = {
    "suspend": suspend,
    "resume": resume,
    "reset": reset,
    "hard-reset": hard_reset,
}


def act(
    db: Database, action: str, scope: Scope, *, now: float, actor: str, reason: str = ""
) -> int:
    """Do ``action`` (one of ``ACTIONS``) to the tasks of ``scope``; how many it changed."""
    check_action(action)
    return ACTIONS[action](db, scope, now=now, actor=actor, reason=reason)


def check_action(action: str) -> None:
    """Refuse a name that is not one of ``ACTIONS``, naming them."""
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; actions: {', '.join(ACTIONS)}")
