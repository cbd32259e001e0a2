"""Recounting: job counters and statuses derived again from the tasks themselves.

After bulk changes (suspend, reset, resume) the touched jobs are recounted instead of
rolled up one task at a time; the repair daemon recounts whole datasets, a slice of jobs
per transaction, in case a counter ever drifted.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, case, func, select, update

from frazil.model.states import (
    DatasetStatus,
    JobCounts,
    JobStatus,
    TaskStatus,
    check_job_transition,
    derive_job_status,
)
from frazil.services.transitions import refresh_dataset
from frazil.store.db import Database
from frazil.store.schema import dataset, job, task

#: Most values in one ``IN (...)`` list.
_CHUNK = 1000


def recount(
    conn: Connection,
    dataset_id: int,
    now: float,
    actor: str,
    job_indexes: Iterable[int] | None = None,
    *,
    job_range: tuple[int, int] | None = None,
    totals: bool = True,
) -> None:
    """Recompute job counters and statuses from the tasks (after bulk changes, or to repair).

    ``job_indexes`` or ``job_range`` (start, stop) limit it to some jobs; ``totals=False``
    leaves the dataset's own counters to a later call (``recount_totals``).
    """
    where = [task.c.dataset_id == dataset_id]
    indexes = None if job_indexes is None else sorted(set(job_indexes))
    if indexes is not None and len(indexes) > _CHUNK:
        indexes = None  # cheaper (and within every backend's parameter limit) to do them all
    if indexes is not None:
        if not indexes:
            return
        where.append(task.c.job_index.in_(indexes))
    if job_range is not None:
        where += [task.c.job_index >= job_range[0], task.c.job_index < job_range[1]]
    counts = conn.execute(
        select(
            task.c.job_index,
            func.count().label("n"),
            func.sum(_is(TaskStatus.COMPLETE)).label("complete"),
            func.sum(_is(TaskStatus.FAILED)).label("failed"),
            func.sum(_is(TaskStatus.SUSPENDED)).label("suspended"),
            func.sum(task.c.failures).label("failures"),
        )
        .where(*where)
        .group_by(task.c.job_index)
    ).all()
    jwhere = [job.c.dataset_id == dataset_id]
    if indexes is not None:
        jwhere.append(job.c.job_index.in_(indexes))
    if job_range is not None:
        jwhere += [job.c.job_index >= job_range[0], job.c.job_index < job_range[1]]
    current = {
        r.job_index: r
        for r in conn.execute(
            select(
                job.c.job_index, job.c.status, job.c.n_complete, job.c.n_failed,
                job.c.n_suspended, job.c.failures,
            ).where(*jwhere)
        )
    }  # fmt: skip
    changes: dict[tuple[int, int, int, int, str, bool], list[int]] = defaultdict(list)
    for c in counts:
        j = current[c.job_index]
        fresh = JobCounts(c.n, int(c.complete), int(c.failed), int(c.suspended), int(c.failures))
        new = derive_job_status(fresh)
        old = JobStatus(j.status)
        moved = new is not old
        if moved:
            check_job_transition(old, new)
        stored = (j.n_complete, j.n_failed, j.n_suspended, j.failures)
        counters = (fresh.complete, fresh.failed, fresh.suspended, fresh.failures)
        if moved or stored != counters:
            changes[(*counters, new.value, moved)].append(c.job_index)
    # one UPDATE per distinct outcome (bulk actions make most jobs alike), in chunks
    for (complete, failed, suspended, failures, status, moved), jobs in changes.items():
        values: dict[str, Any] = {
            "n_complete": complete,
            "n_failed": failed,
            "n_suspended": suspended,
            "failures": failures,
            "status": status,
        }
        if moved:
            values["status_changed"] = now
        for k in range(0, len(jobs), _CHUNK):
            conn.execute(
                update(job)
                .where(job.c.dataset_id == dataset_id, job.c.job_index.in_(jobs[k : k + _CHUNK]))
                .values(**values)
            )
    if totals:
        recount_totals(conn, dataset_id, now, actor)


def recount_totals(conn: Connection, dataset_id: int, now: float, actor: str) -> None:
    """Recompute the dataset's job counters from its jobs, and its status."""
    totals = conn.execute(
        select(
            func.sum(_job_is(JobStatus.COMPLETE)).label("complete"),
            func.sum(_job_is(JobStatus.FAILED)).label("failed"),
        ).where(job.c.dataset_id == dataset_id)
    ).one()
    conn.execute(
        update(dataset)
        .where(dataset.c.id == dataset_id)
        .values(
            jobs_complete=int(totals.complete or 0),
            jobs_failed=int(totals.failed or 0),
            updated_at=now,
        )
    )
    refresh_dataset(conn, dataset_id, now, actor)


def _is(status: TaskStatus) -> Any:
    return case((task.c.status == status.value, 1), else_=0)


def _job_is(status: JobStatus) -> Any:
    return case((job.c.status == status.value, 1), else_=0)


def repair_step(db: Database, now: float) -> int:
    """Recount every dataset still at work; returns how many were recounted."""
    with db.read() as conn:
        ids = [
            r.id
            for r in conn.execute(
                select(dataset.c.id).where(dataset.c.status != DatasetStatus.COMPLETE.value)
            )
        ]
    for dataset_id in ids:
        # a slice of jobs per transaction: bounded memory, and the write lock is let go
        # between slices (a whole 10^6-task dataset at once held it for seconds)
        with db.read() as conn:
            top = conn.execute(
                select(func.max(job.c.job_index)).where(job.c.dataset_id == dataset_id)
            ).scalar_one()
        for start in range(0, (top if top is not None else -1) + 1, REPAIR_JOBS):

            def part(conn: Connection, dataset_id: int = dataset_id, start: int = start) -> None:
                window = (start, start + REPAIR_JOBS)
                recount(conn, dataset_id, now, "daemon:repair", job_range=window, totals=False)

            db.transaction(part)

        def totals(conn: Connection, dataset_id: int = dataset_id) -> None:
            recount_totals(conn, dataset_id, now, "daemon:repair")

        db.transaction(totals)
    return len(ids)


#: Jobs recounted per transaction by the repair daemon.
REPAIR_JOBS = 5_000
