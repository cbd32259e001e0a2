"""Claiming: handing ready tasks to a site, atomically, fairly, and only what fits.

One transaction per call. On PostgreSQL and MariaDB the candidate rows are selected
``FOR UPDATE SKIP LOCKED``, so sites claiming at the same time pass each other by instead of
queueing or taking the same task; on SQLite the transaction holds the write lock
(``BEGIN IMMEDIATE``). Each claimed task gets a new attempt and a fresh random passkey, of
which only a hash is stored.

Fair share: datasets are served in order of active tasks per unit of priority (the least
served first), each up to its priority's share of the batch; what is left over goes to
whoever still has work, in the same order. A dataset with priority 0 only gets leftovers.
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, func, or_, select, update

from frazil.errors import Rejected
from frazil.model.records import Claim, SiteResources, extras_fit
from frazil.model.states import DatasetStatus, TaskStatus, check_task_transition
from frazil.store.bulk import bulk_insert
from frazil.store.db import Database
from frazil.store.schema import dataset, task, task_attempt

MAX_BATCH = 10_000
#: Fair share counts a dataset's active tasks up to this many (a bounded cost per claim).
ACTIVE_CAP = 10_000
_STATUS_INDEX = "ix_task_dataset_id_status_job_index_task_index"
ATTEMPT_COLUMNS = (
    "task_id", "number", "passkey_hash", "site", "outcome", "claimed_at", "config_version",
)  # fmt: skip
CLAIMABLE = (DatasetStatus.PROCESSING.value, DatasetStatus.ERRORS.value)


def hash_passkey(passkey: str) -> str:
    """The stored form of a passkey (random and long, so one fast hash is enough)."""
    return hashlib.sha256(passkey.encode()).hexdigest()


def _fits(site: SiteResources) -> list[Any]:
    conditions = [
        task.c.cpu <= site.cpu,
        task.c.gpu <= site.gpu,
        task.c.memory <= site.memory,
        task.c.disk <= site.disk,
        task.c.time <= site.time,
        or_(task.c.site_req.is_(None), task.c.site_req.contains(f"|{site.name}|", autoescape=True)),
    ]
    if site.os:
        conditions.append(
            or_(task.c.os.is_(None), task.c.os.contains(f"|{site.os}|", autoescape=True))
        )
    else:
        conditions.append(task.c.os.is_(None))
    return conditions


def _candidates(
    conn: Connection, dataset_id: int, site: SiteResources, limit: int, skip_locked: bool
) -> list[Any]:
    stmt = (
        select(
            task.c.id,
            task.c.attempts,
            task.c.job_index,
            task.c.task_index,
            task.c.name,
            task.c.cpu,
            task.c.gpu,
            task.c.memory,
            task.c.disk,
            task.c.time,
            task.c.req_extra,
        )
        .where(
            task.c.dataset_id == dataset_id,
            task.c.status == TaskStatus.WAITING.value,
            *_fits(site),
        )
        .order_by(task.c.job_index, task.c.task_index)
        .limit(limit)
    )
    for dialect in ("mysql", "mariadb"):
        # MariaDB would rather walk the (dataset, job, task) key in ORDER BY order, locking
        # every row it passes, than use the status index
        stmt = stmt.with_hint(task, f"FORCE INDEX ({_STATUS_INDEX})", dialect)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).all()
    return [r for r in rows if r.req_extra is None or extras_fit(json.loads(r.req_extra), site)]


def _hand_out(
    conn: Connection, dataset_id: int, version: int, rows: Sequence[Any], site: SiteResources,
    now: float,
) -> list[Claim]:  # fmt: skip
    if not rows:
        return []
    ids = [r.id for r in rows]
    changed = conn.execute(
        update(task)
        .where(task.c.id.in_(ids), task.c.status == TaskStatus.WAITING.value)
        .values(
            status=TaskStatus.QUEUED.value,
            attempts=task.c.attempts + 1,
            site=site.name,
            phase=None,
            heartbeat_at=None,
            status_changed=now,
        )
    ).rowcount
    if changed != len(ids):
        # rows were locked for us (or the write lock is held): this means a bug, not a race
        raise Rejected(f"claimed {len(ids)} tasks but {changed} were still waiting")
    claims = []
    attempts = []
    for r in rows:
        passkey = secrets.token_urlsafe(24)
        number = r.attempts + 1
        attempts.append((r.id, number, hash_passkey(passkey), site.name, "open", now, version))
        claims.append(
            Claim(
                task_id=r.id,
                attempt=number,
                passkey=passkey,
                dataset_id=dataset_id,
                job_index=r.job_index,
                task_index=r.task_index,
                name=r.name,
                cpu=r.cpu,
                gpu=r.gpu,
                memory=r.memory,
                disk=r.disk,
                time=r.time,
            )
        )
    bulk_insert(conn, task_attempt, ATTEMPT_COLUMNS, attempts)
    return claims


def _order(conn: Connection, limit: int) -> list[tuple[int, int, int]]:
    """(dataset id, config version, quota) in the order datasets are served."""
    datasets = conn.execute(
        select(dataset.c.id, dataset.c.priority, dataset.c.config_version).where(
            dataset.c.status.in_(CLAIMABLE)
        )
    ).all()
    if not datasets:
        return []
    active: dict[int, int] = {}
    for d in datasets:
        capped = (
            select(task.c.id)
            .where(
                task.c.dataset_id == d.id,
                task.c.status.in_([TaskStatus.QUEUED.value, TaskStatus.PROCESSING.value]),
            )
            .limit(ACTIVE_CAP)
            .subquery()
        )
        active[d.id] = conn.execute(select(func.count()).select_from(capped)).scalar_one()
    total = sum(max(d.priority, 0.0) for d in datasets)

    def served(d: Any) -> tuple[float, float, int]:
        weight = max(d.priority, 0.0)
        load = (active.get(d.id, 0) + 1) / weight if weight > 0 else math.inf
        return (load, -weight, d.id)

    order = []
    for d in sorted(datasets, key=served):
        quota = math.ceil(limit * d.priority / total) if total > 0 and d.priority > 0 else 0
        order.append((d.id, d.config_version, quota))
    return order


def claim(db: Database, site: SiteResources, limit: int, now: float) -> list[Claim]:
    """Hand up to ``limit`` waiting tasks that fit ``site`` to it; each becomes ``queued``."""
    if not 0 < limit <= MAX_BATCH:
        raise Rejected(f"claim between 1 and {MAX_BATCH} tasks at a time, not {limit}")
    check_task_transition(TaskStatus.WAITING, TaskStatus.QUEUED)
    skip_locked = db.skip_locked

    def run(conn: Connection) -> list[Claim]:
        claims: list[Claim] = []
        order = _order(conn, limit)
        for second_pass in (False, True):
            for dataset_id, version, quota in order:
                room = limit - len(claims)
                if room <= 0:
                    return claims
                taken = sum(1 for c in claims if c.dataset_id == dataset_id)
                want = room if second_pass else min(room, quota - taken)
                if want <= 0:
                    continue
                rows = _candidates(conn, dataset_id, site, want, skip_locked)
                claims += _hand_out(conn, dataset_id, version, rows, site, now)
        return claims

    return db.transaction(run)
