"""Claiming: handing ready tasks to a site, atomically, fairly, and only what fits.

One transaction per call. On PostgreSQL and MariaDB the candidate rows are selected
``FOR UPDATE SKIP LOCKED``, so sites claiming at the same time pass each other by instead of
queueing or taking the same task; on SQLite the transaction holds the write lock
(``BEGIN IMMEDIATE``). Each claimed task gets a new attempt and a fresh random passkey, of
which only a hash is stored.

Fair share: datasets are served in order of active tasks per unit of priority (the least
served first), each up to its priority's share of the batch; what is left over goes to
whoever still has work, in the same order. A dataset with priority 0 only gets leftovers.
Each priority counts as a weight between ``MIN_WEIGHT`` and ``PRIORITY.high`` (a stored value
outside that range, or NaN, is clamped first), so neither the sum over every dataset nor any
quotient can overflow or be NaN, whatever the priorities are.

A claim may carry a request id (random, chosen by the site): a repeat of the request, sent
because its answer was lost (the connection cut, the server killed after its commit), gets
the same tasks with the same passkeys, derived from the id, instead of new ones; only the
id's hash is stored, so the passkeys stay known to the requester alone.
"""

from __future__ import annotations

import json
import math
import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, update

from frazil.errors import BadPasskey, Rejected
from frazil.model.dag import build_dag
from frazil.model.limits import PRIORITY
from frazil.model.records import Claim, DagTask, JobClaim, SiteResources, extras_fit
from frazil.model.states import (
    ACTIVE_TASK_STATES,
    AttemptOutcome,
    DatasetStatus,
    TaskStatus,
    attempt_is_current,
    check_task_transition,
)
from frazil.services.keys import check_request_id, hash_key, key_matches, request_passkey
from frazil.services.transitions import dependency_edges
from frazil.store.bulk import bulk_insert
from frazil.store.db import Database, locks_rows, mark_taken
from frazil.store.functions import position
from frazil.store.prepared import prepared
from frazil.store.schema import dataset, task, task_attempt

MAX_BATCH = 10_000
#: Fair share counts a dataset's active tasks up to this many (a bounded cost per claim).
ACTIVE_CAP = 10_000
_STATUS_INDEX = "ix_task_dataset_id_status_job_index_task_index"
ATTEMPT_COLUMNS = (
    "task_id", "number", "passkey_hash", "site", "outcome", "claimed_at", "config_version",
    "pilot_id", "request_hash",
)  # fmt: skip
CLAIMABLE = (DatasetStatus.PROCESSING.value, DatasetStatus.ERRORS.value)


#: A reservation that waits this long without its site claiming the task lapses.
RESERVATION_TTL = 600.0
#: A task that failed at a site while another live site fits it waits this long for another
#: site to claim it before the same site may take it again.
PREFER_OTHER_SITE = 300.0


def fit_conditions(with_os: bool) -> list[Any]:
    """SQL conditions for a waiting task that a site may run now: the one place the rule
    lives (bound by ``fit_params``; with_os: the site names its OS)."""
    return [
        task.c.status == TaskStatus.WAITING.value,
        or_(
            task.c.reserved_for.is_(None),
            task.c.reserved_for == bindparam("p_site"),
            task.c.status_changed < bindparam("p_lapsed"),
        ),
        or_(
            task.c.avoid_site.is_(None),
            task.c.avoid_site != bindparam("p_site"),
            task.c.status_changed < bindparam("p_avoid_lapsed"),
        ),
        task.c.cpu <= bindparam("p_cpu"),
        task.c.gpu <= bindparam("p_gpu"),
        task.c.memory <= bindparam("p_memory"),
        task.c.disk <= bindparam("p_disk"),
        task.c.time <= bindparam("p_time"),
        # "|a|b|" holds the name exactly (LIKE would fold case on SQLite)
        or_(task.c.site_req.is_(None), position(task.c.site_req, bindparam("p_site_bar")) > 0),
        or_(task.c.os.is_(None), position(task.c.os, bindparam("p_os_bar")) > 0)
        if with_os
        else task.c.os.is_(None),
    ]


def fit_params(site: SiteResources, now: float) -> dict[str, Any]:
    """The values ``fit_conditions`` are bound to for ``site`` at ``now``."""
    return {
        "p_site": site.name, "p_lapsed": now - RESERVATION_TTL,
        "p_avoid_lapsed": now - PREFER_OTHER_SITE, "p_cpu": site.cpu,
        "p_gpu": site.gpu, "p_memory": site.memory, "p_disk": site.disk, "p_time": site.time,
        "p_site_bar": f"|{site.name}|", "p_os_bar": f"|{site.os or ''}|",
    }  # fmt: skip


def _candidates_stmt(with_os: bool, skip_locked: bool, roots_only: bool) -> Any:
    conditions = [task.c.dataset_id == bindparam("p_dataset"), *fit_conditions(with_os)]
    if roots_only:
        conditions += [task.c.attempts == 0, task.c.reserved_for.is_(None)]
    stmt = (
        select(
            task.c.id, task.c.attempts, task.c.job_index, task.c.task_index, task.c.name,
            task.c.cpu, task.c.gpu, task.c.memory, task.c.disk, task.c.time, task.c.req_extra,
        )
        .where(*conditions)
        .order_by(task.c.job_index, task.c.task_index)
        .limit(bindparam("p_limit"))
    )  # fmt: skip
    for dialect in ("mysql", "mariadb"):
        # MariaDB would rather walk the (dataset, job, task) key in ORDER BY order, locking
        # every row it passes, than use the status index
        stmt = stmt.with_hint(task, f"FORCE INDEX ({_STATUS_INDEX})", dialect)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    return stmt


def _candidates(
    conn: Connection, dataset_id: int, site: SiteResources, limit: int, skip_locked: bool,
    now: float, *, roots_only: bool = False,
) -> list[Any]:  # fmt: skip
    with_os = bool(site.os)
    stmt = prepared(
        ("candidates", with_os, skip_locked, roots_only),
        lambda: _candidates_stmt(with_os, skip_locked, roots_only),
    )
    params = {"p_dataset": dataset_id, "p_limit": limit, **fit_params(site, now)}
    rows = conn.execute(stmt, params).all()
    return [r for r in rows if r.req_extra is None or extras_fit(json.loads(r.req_extra), site)]


def _hand_out(
    conn: Connection, dataset_id: int, version: int, rows: Sequence[Any], site: SiteResources,
    now: float, pilot_id: int | None = None, request_id: str | None = None,
) -> list[Claim]:  # fmt: skip
    if not rows:
        return []
    ids = [r.id for r in rows]
    stmt = prepared(
        "hand_out",
        lambda: (
            update(task)
            .where(
                task.c.id.in_(bindparam("p_ids", expanding=True)),
                task.c.status == TaskStatus.WAITING.value,
            )
            .values(
                status=TaskStatus.QUEUED.value,
                attempts=task.c.attempts + 1,
                site=bindparam("p_site"),
                phase=None,
                heartbeat_at=None,
                status_changed=bindparam("p_now"),
            )
        ),
    )
    changed = conn.execute(stmt, {"p_ids": ids, "p_site": site.name, "p_now": now}).rowcount
    if changed != len(ids):
        # rows were locked for us (or the write lock is held): this means a bug, not a race
        raise Rejected(f"claimed {len(ids)} tasks but {changed} were still waiting")
    claims = []
    attempts = []
    request_hash = hash_key(request_id) if request_id else None
    for r in rows:
        number = r.attempts + 1
        passkey = (
            request_passkey(request_id, r.id, number) if request_id else secrets.token_urlsafe(24)
        )
        attempts.append(
            (r.id, number, hash_key(passkey), site.name, AttemptOutcome.OPEN.value, now, version,
             pilot_id, request_hash)
        )  # fmt: skip
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


#: The smallest weight a positive priority counts for in the fair share.
MIN_WEIGHT = 1e-6


def share_weight(priority: float) -> float:
    """A dataset's weight in the fair share: 0 for 0 (and NaN), else its priority clamped
    to ``[MIN_WEIGHT, PRIORITY.high]`` (rows stored before priorities were bounded)."""
    if not priority > 0:
        return 0.0
    return min(max(priority, MIN_WEIGHT), PRIORITY.high)


def _order_stmts() -> tuple[Any, Any]:
    claimable = select(dataset.c.id, dataset.c.priority, dataset.c.config_version).where(
        dataset.c.status.in_(CLAIMABLE)
    )
    capped = (
        select(task.c.id)
        .where(
            task.c.dataset_id == bindparam("p_dataset"),
            task.c.status.in_(sorted(s.value for s in ACTIVE_TASK_STATES)),
        )
        .limit(ACTIVE_CAP)
        .subquery()
    )
    return claimable, select(func.count()).select_from(capped)


def _order(conn: Connection, limit: int) -> list[tuple[int, int, int]]:
    """(dataset id, config version, quota) in the order datasets are served."""
    claimable, count_active = prepared("order", _order_stmts)
    datasets = conn.execute(claimable).all()
    if not datasets:
        return []
    active: dict[int, int] = {}
    weights: dict[int, float] = {}
    for d in datasets:
        active[d.id] = conn.execute(count_active, {"p_dataset": d.id}).scalar_one()
        weights[d.id] = share_weight(d.priority)
    total = sum(weights.values())  # at most len(datasets) * PRIORITY.high

    def served(d: Any) -> tuple[float, float, int]:
        weight = weights[d.id]
        load = (active[d.id] + 1) / weight if weight > 0 else math.inf  # <= 1e10
        return (load, -weight, d.id)

    order = []
    for d in sorted(datasets, key=served):
        weight = weights[d.id]
        quota = math.ceil(limit * weight / total) if weight > 0 else 0  # weight <= total
        order.append((d.id, d.config_version, quota))
    return order


class Budget:
    """What a multi-task pilot has left: the tasks it claims at once must fit in it together."""

    def __init__(self, site: SiteResources) -> None:
        self.left = {"cpu": site.cpu, "gpu": site.gpu, "memory": site.memory, "disk": site.disk}

    def take(self, row: Any) -> bool:
        """Reserve ``row``'s requests if they fit in what is left."""
        need = {k: getattr(row, k) for k in self.left}
        if any(need[k] > self.left[k] + 1e-9 for k in self.left):
            return False
        for k in self.left:
            self.left[k] -= need[k]
        return True


def claim_in(
    conn: Connection, site: SiteResources, limit: int, now: float, skip_locked: bool, *,
    budget: Budget | None = None, pilot_id: int | None = None, request_id: str | None = None,
) -> list[Claim]:  # fmt: skip
    """``claim`` within a transaction; with ``budget``, the tasks fit in it together."""
    check_task_transition(TaskStatus.WAITING, TaskStatus.QUEUED)
    claims: list[Claim] = []
    order = _order(conn, limit)
    exhausted: set[int] = set()  # datasets that gave fewer tasks than were asked for
    for second_pass in (False, True):
        for dataset_id, version, quota in order:
            room = limit - len(claims)
            if room <= 0:
                break
            taken = sum(1 for c in claims if c.dataset_id == dataset_id)
            want = room if second_pass else min(room, quota - taken)
            if want <= 0 or dataset_id in exhausted:
                continue
            rows = _candidates(conn, dataset_id, site, want, skip_locked, now)
            if len(rows) < want:
                exhausted.add(dataset_id)
            if budget is not None:
                rows = [r for r in rows if budget.take(r)]
            claims += _hand_out(conn, dataset_id, version, rows, site, now, pilot_id, request_id)
    mark_taken(conn, len(claims))
    return claims


def _repeat_stmt() -> Any:
    return (
        select(
            task_attempt.c.task_id, task_attempt.c.number, task_attempt.c.site,
            task_attempt.c.pilot_id, task_attempt.c.outcome, task_attempt.c.spec, task.c.status,
            task.c.attempts, task.c.dataset_id, task.c.job_index, task.c.task_index,
            task.c.name, task.c.cpu, task.c.gpu, task.c.memory, task.c.disk, task.c.time,
        )
        .join(task, task.c.id == task_attempt.c.task_id)
        .where(task_attempt.c.request_hash == bindparam("p_hash"))
        .order_by(task_attempt.c.id)
    )  # fmt: skip


def repeated(
    conn: Connection, request_id: str, *, site: str, pilot_id: int | None, status: TaskStatus
) -> list[Any] | None:
    """The attempts an earlier request with this id handed to ``site`` (or its pilot) that are
    still as they were handed out (open, current, ``status``); None when there was none.

    One indexed lookup: the cost of a request id on the hot path.
    """
    stmt = prepared("repeated", _repeat_stmt)
    rows = [
        r
        for r in conn.execute(stmt, {"p_hash": hash_key(request_id)})
        if r.site == site and r.pilot_id == pilot_id
    ]
    if not rows:
        return None
    return [
        r for r in rows
        if attempt_is_current(
            status=r.status, attempts=r.attempts, number=r.number, outcome=r.outcome,
            states=(status,),
        )
    ]  # fmt: skip


def claim_again(r: Any, request_id: str) -> Claim:
    """A row of ``repeated`` as the claim that first handed it out."""
    passkey = request_passkey(request_id, r.task_id, r.number)
    return Claim(
        task_id=r.task_id, attempt=r.number, passkey=passkey, dataset_id=r.dataset_id,
        job_index=r.job_index, task_index=r.task_index, name=r.name,
        cpu=r.cpu, gpu=r.gpu, memory=r.memory, disk=r.disk, time=r.time,
    )  # fmt: skip


def claim(
    db: Database, site: SiteResources, limit: int, now: float, *, request_id: str | None = None
) -> list[Claim]:
    """Hand up to ``limit`` waiting tasks that fit ``site`` to it; each becomes ``queued``.

    With ``request_id``, a repeated request gets what the first one handed out (the tasks
    no pilot has started yet), and nothing new.
    """
    if not 0 < limit <= MAX_BATCH:
        raise Rejected(f"claim between 1 and {MAX_BATCH} tasks at a time, not {limit}")
    if request_id is not None:
        check_request_id(request_id)
    skip_locked = db.skip_locked

    def run(conn: Connection) -> list[Claim]:
        if request_id is not None:
            again = repeated(
                conn, request_id, site=site.name, pilot_id=None, status=TaskStatus.QUEUED
            )
            if again is not None:
                return [claim_again(r, request_id) for r in again]
        return claim_in(conn, site, limit, now, skip_locked, request_id=request_id)

    return db.transaction(run)


# -- batch-side DAGs: whole jobs for one site ---------------------------------------------------

_ROW = (
    task.c.id, task.c.attempts, task.c.job_index, task.c.task_index, task.c.name, task.c.status,
    task.c.deps_pending, task.c.reserved_for, task.c.cpu, task.c.gpu, task.c.memory,
    task.c.disk, task.c.time, task.c.os, task.c.site_req, task.c.req_extra,
)  # fmt: skip


def row_fits(r: Any, site: SiteResources) -> bool:
    """The SQL filter of ``fit_conditions`` (its requests), for rows already read."""
    return (
        r.cpu <= site.cpu and r.gpu <= site.gpu and r.memory <= site.memory
        and r.disk <= site.disk and r.time <= site.time
        and (r.os is None or (site.os is not None and f"|{site.os}|" in r.os))
        and (r.site_req is None or f"|{site.name}|" in r.site_req)
        and (r.req_extra is None or extras_fit(json.loads(r.req_extra), site))
    )  # fmt: skip


def _claim_job(
    conn: Connection, dataset_id: int, version: int, job_index: int, site: SiteResources,
    now: float, skip_locked: bool,
) -> JobClaim | None:  # fmt: skip
    stmt = select(*_ROW).where(task.c.dataset_id == dataset_id, task.c.job_index == job_index)
    if skip_locked:
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt.order_by(task.c.task_index)).all()
    n = conn.execute(select(dataset.c.tasks_per_job).where(dataset.c.id == dataset_id)).scalar_one()
    fresh = all(
        r.status in (TaskStatus.IDLE.value, TaskStatus.WAITING.value)
        and r.attempts == 0 and r.reserved_for is None
        for r in rows
    )  # fmt: skip
    if len(rows) != n or not fresh or not all(row_fits(r, site) for r in rows):
        return None  # partly taken, already started, or some task cannot run here
    roots = [r for r in rows if r.status == TaskStatus.WAITING.value]
    handed = {c.task_id: c for c in _hand_out(conn, dataset_id, version, roots, site, now)}
    by_index = {r.task_index: r for r in rows}
    parents: dict[int, list[int]] = {r.task_index: [] for r in rows}
    for child, parent in dependency_edges(conn, dataset_id):
        parents[child].append(parent)
    dag, _ = build_dag([str(i) for i in range(n)], [parents[i] for i in range(n)])
    assert dag is not None
    tasks = []
    for index in dag.order:
        r = by_index[index]
        claim = handed.get(r.id)
        key = "" if claim else secrets.token_urlsafe(24)
        conn.execute(
            update(task)
            .where(task.c.id == r.id)
            .values(reserved_for=site.name, reservation_hash=hash_key(key) if key else None)
        )
        tasks.append(
            DagTask(
                task_id=r.id, task_index=index, name=r.name,
                parents=tuple(by_index[p].id for p in parents[index]),
                cpu=r.cpu, gpu=r.gpu, memory=r.memory, disk=r.disk, time=r.time,
                attempt=claim.attempt if claim else 0, passkey=claim.passkey if claim else "",
                reservation=key,
            )
        )  # fmt: skip
    return JobClaim(dataset_id, job_index, tuple(tasks))


def claim_jobs(db: Database, site: SiteResources, jobs: int, now: float) -> list[JobClaim]:
    """Hand up to ``jobs`` whole jobs to a site that runs their DAGs in its batch system.

    Only jobs none of whose tasks has started, and all of whose tasks fit the site, are
    taken. Their ready tasks are claimed as usual; the others are reserved for the site,
    each with a key that its pilot uses to claim it once its dependencies are complete.
    """
    if not 0 < jobs <= 1000:
        raise Rejected(f"claim between 1 and 1000 jobs at a time, not {jobs}")
    skip_locked = db.skip_locked

    def run(conn: Connection) -> list[JobClaim]:
        out: list[JobClaim] = []
        for dataset_id, version, _ in _order(conn, jobs):
            while len(out) < jobs:
                roots = _candidates(conn, dataset_id, site, 50, skip_locked, now, roots_only=True)
                taken = 0
                for job_index in sorted({r.job_index for r in roots}):
                    if len(out) >= jobs:
                        break
                    claim = _claim_job(conn, dataset_id, version, job_index, site, now, skip_locked)
                    if claim is not None:
                        out.append(claim)
                        taken += 1
                if not taken:
                    break
        return out

    return db.transaction(run)


def claim_reserved(db: Database, task_id: int, key: str, now: float) -> Claim:
    """A reserved task's own pilot claims it: only once it is ready (``waiting``)."""

    def run(conn: Connection) -> Claim:
        stmt = select(*_ROW, task.c.dataset_id, task.c.reservation_hash).where(task.c.id == task_id)
        if locks_rows(conn):
            stmt = stmt.with_for_update()
        r = conn.execute(stmt).first()
        if r is None or r.reservation_hash is None or r.reserved_for is None:
            raise BadPasskey(f"task {task_id} holds no reservation")
        if not key_matches(r.reservation_hash, key):
            raise BadPasskey(f"wrong reservation key for task {task_id}")
        if r.status != TaskStatus.WAITING.value:
            raise Rejected(f"task {task_id} is {r.status}, not ready to run")
        version = conn.execute(
            select(dataset.c.config_version).where(dataset.c.id == r.dataset_id)
        ).scalar_one()
        (claim,) = _hand_out(
            conn, r.dataset_id, version, [r], SiteResources(name=r.reserved_for), now
        )
        conn.execute(update(task).where(task.c.id == task_id).values(reservation_hash=None))
        return claim

    return db.transaction(run)
