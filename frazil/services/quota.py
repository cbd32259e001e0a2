"""Quotas: how many jobs and tasks one submitter may ask for.

Four caps, each a default from ``[quota]`` in ``frazil.toml`` that an administrator may
override per submitter (``frazil quota set``, ``PUT /quotas/{name}``):

- ``dataset_jobs``, ``dataset_tasks``: the jobs of one dataset, and its tasks (jobs times
  the tasks of a job);
- ``jobs``, ``tasks``: the jobs not yet complete over all of the submitter's datasets, and
  the tasks of those jobs.

A submitter is a dataset's owner: the name of the token that submitted it (the user name for
the CLI). What a submitter holds is summed from the datasets' own counters
(``jobs_submitted - jobs_complete`` and ``tasks_per_job``), one query over their datasets
and no task row read. Submit and set-jobs check before they spend time on the config, and
again inside their write transaction.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update

from frazil.config import QuotaSettings
from frazil.errors import QuotaExceeded, Rejected
from frazil.store.db import Database
from frazil.store.schema import dataset, quota
from frazil.wire import Holdings, Quota

CAPS = ("dataset_jobs", "dataset_tasks", "jobs", "tasks")

_WHAT = {
    "dataset_jobs": "jobs in one dataset",
    "dataset_tasks": "tasks in one dataset",
    "jobs": "jobs not yet complete",
    "tasks": "tasks of jobs not yet complete",
}
_OPTION = {
    "dataset_jobs": "--dataset-jobs",
    "dataset_tasks": "--dataset-tasks",
    "jobs": "--jobs",
    "tasks": "--tasks",
}


def quota_of(conn: Connection, submitter: str, defaults: QuotaSettings) -> Quota:
    """``submitter``'s caps and what they hold."""
    row = conn.execute(select(quota).where(quota.c.submitter == submitter)).first()
    caps = asdict(defaults)
    overridden = []
    if row is not None and row.submitter == submitter:  # MariaDB's collation ignores case
        for cap in CAPS:
            if getattr(row, cap) is not None:
                caps[cap] = int(getattr(row, cap))
                overridden.append(cap)
    open_jobs = dataset.c.jobs_submitted - dataset.c.jobs_complete
    held = conn.execute(
        select(
            func.coalesce(func.sum(open_jobs), 0),
            func.coalesce(func.sum(open_jobs * dataset.c.tasks_per_job), 0),
        ).where(dataset.c.owner == submitter)
    ).one()
    return Quota(submitter, **caps, overridden=tuple(overridden), usage=Holdings(*map(int, held)))


def _refuse(q: Quota, cap: str, detail: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"over the quota of {q.submitter!r}: at most {getattr(q, cap)} {_WHAT[cap]}; "
        f"{detail} (an administrator sets it: [quota] {cap} in frazil.toml, or "
        f"`frazil quota set {q.submitter} {_OPTION[cap]} N`)"
    )


def check(
    conn: Connection, submitter: str, defaults: QuotaSettings, *, jobs: int, tasks_per_job: int,
    adding: int,
) -> None:  # fmt: skip
    """Refuse a dataset of ``jobs`` jobs (of ``tasks_per_job`` tasks) that grows by ``adding``
    jobs, if it takes ``submitter`` past a cap; ``QuotaExceeded`` names the cap."""
    q = quota_of(conn, submitter, defaults)
    if jobs > q.dataset_jobs:
        raise _refuse(q, "dataset_jobs", f"this dataset would have {jobs}")
    if jobs * tasks_per_job > q.dataset_tasks:
        raise _refuse(q, "dataset_tasks", f"this dataset would have {jobs} x {tasks_per_job} tasks")
    if adding <= 0:
        return
    if q.usage.jobs + adding > q.jobs:
        raise _refuse(q, "jobs", f"{q.usage.jobs} now, and this would add {adding}")
    more = adding * tasks_per_job
    if q.usage.tasks + more > q.tasks:
        raise _refuse(q, "tasks", f"{q.usage.tasks} now, and this would add {more}")


def get_quota(db: Database, submitter: str, defaults: QuotaSettings) -> Quota:
    """``submitter``'s caps and what they hold."""
    with db.read() as conn:
        return quota_of(conn, submitter, defaults)


def list_quotas(db: Database, defaults: QuotaSettings) -> list[Quota]:
    """The submitters an administrator set caps for, with their caps and what they hold."""
    with db.read() as conn:
        names = conn.execute(select(quota.c.submitter).order_by(quota.c.submitter)).scalars()
        return [quota_of(conn, name, defaults) for name in list(names)]


def set_quota(
    db: Database, submitter: str, defaults: QuotaSettings, *, now: float, actor: str,
    **caps: int | None,
) -> Quota:  # fmt: skip
    """Set some of ``submitter``'s caps (``None``: back to the default); the others stay."""
    unknown = set(caps) - set(CAPS)
    if unknown:
        raise Rejected(f"unknown quota cap(s): {', '.join(sorted(unknown))}; caps: {CAPS}")
    for cap, value in caps.items():
        if value is not None and not 0 <= value <= 10**12:
            raise Rejected(f"a quota cap is a number from 0 to 10^12, got {cap}={value}")
    if not submitter or len(submitter) > 255:
        raise Rejected("a submitter is a name of 1 to 255 characters")

    def run(conn: Connection) -> Quota:
        exists = conn.execute(select(quota.c.submitter).where(quota.c.submitter == submitter))
        values: dict[str, Any] = {**caps, "updated_at": now, "updated_by": actor}
        if exists.first() is None:
            conn.execute(insert(quota).values(submitter=submitter, **values))
        else:
            conn.execute(update(quota).where(quota.c.submitter == submitter).values(**values))
        return quota_of(conn, submitter, defaults)

    return db.transaction(run)


def clear_quota(db: Database, submitter: str, defaults: QuotaSettings) -> Quota:
    """Give ``submitter`` the default caps again."""

    def run(conn: Connection) -> Quota:
        conn.execute(delete(quota).where(quota.c.submitter == submitter))
        return quota_of(conn, submitter, defaults)

    return db.transaction(run)
